#!/bin/sh
# A pinentry for tests: answers every PIN request with "interop" (gpg-agent asks one to
# protect a key added with ssh-add, and again to use it). Used by openssh-suite.ts.
echo "OK Pleased to meet you"
while read -r cmd rest; do
  case "$cmd" in
    GETPIN) echo "D interop"; echo "OK";;
    BYE) echo "OK closing connection"; exit 0;;
    *) echo "OK";;
  esac
done

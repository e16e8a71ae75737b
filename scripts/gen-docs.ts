/** Writes man/ and completions/ from the commander tree (see scripts/docs.ts). */
import { writeFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateDocs } from './docs.ts';

const files = await generateDocs();
for (const dir of ['man', 'completions']) {
  mkdirSync(dir, { recursive: true });
  for (const f of readdirSync(dir)) if (!files.has(join(dir, f))) rmSync(join(dir, f));
}
for (const [path, content] of files) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
}
console.log(`wrote ${files.size} files to man/ and completions/`);

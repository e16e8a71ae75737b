/** "Did you mean": the known word nearest to a mistyped one, for errors about names (settings, audit types). */

/** The edit distance of two words: insertions, deletions, substitutions and swaps of neighbours. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The known words nearest to `word` (case-insensitive), when near enough to be a typo: at
 * most a third of the word's length away; failing that, the words that contain it.
 */
export function nearest(word: string, known: readonly string[]): string[] {
  const w = word.toLowerCase();
  if (!w) return [];
  const scored = known.map((k) => ({ k, d: editDistance(w, k.toLowerCase()) })).filter((s) => s.d <= Math.max(1, Math.floor(w.length / 3)));
  if (scored.length) {
    const best = Math.min(...scored.map((s) => s.d));
    return scored.filter((s) => s.d === best).map((s) => s.k);
  }
  return w.length >= 3 ? known.filter((k) => k.toLowerCase().includes(w)).slice(0, 3) : [];
}

/** `Did you mean x?` (or `x or y`), or undefined when nothing is near. */
export function didYouMean(word: string, known: readonly string[]): string | undefined {
  const n = nearest(word, known);
  return n.length ? `Did you mean ${n.join(' or ')}?` : undefined;
}

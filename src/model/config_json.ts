/**
 * config.json text that both generations of HF transformers read. transformers 5.x validates a config's typed
 * fields strictly and rejects `1` where it declares a float, while JavaScript writes the number 1.0 as `1`: so the
 * fields a T5 config declares as floats, and every number its source file wrote as a float, are written with a
 * decimal point.
 */

/** Float fields of HF's T5Config (and of the configuration base class) that 5.x rejects as integers. */
export const FLOAT_CONFIG_FIELDS: readonly string[] = ['dropout_rate', 'layer_norm_epsilon', 'initializer_factor', 'classifier_dropout'];

/** Top-level keys whose value the JSON text writes as a non-integer literal (`1.0`, `1e-06`). */
export function floatLiteralKeys(text: string, parsed: Record<string, unknown>): Set<string> {
  const keys = new Set<string>();
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)/g)) {
    const key = JSON.parse(`"${m[1]}"`) as string;
    if (/[.eE]/.test(m[2]!) && typeof parsed[key] === 'number') keys.add(key);
  }
  return keys;
}

/**
 * `JSON.stringify(value, null, 2)` with the top-level keys sorted (as HF writes them) and the named number fields
 * written as floats (`1.0`, not `1`).
 */
export function stringifyConfig(config: Record<string, unknown>, floatKeys: Iterable<string>): string {
  const value = Object.fromEntries(Object.entries(config).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const floats = new Set(floatKeys);
  const marker = '@@t5cls-float@@';
  const text = JSON.stringify(
    value,
    function (this: unknown, key, v) {
      return this === value && floats.has(key) && typeof v === 'number' && Number.isSafeInteger(v) ? `${marker}${v}` : v;
    },
    2,
  );
  return text.replace(new RegExp(`"${marker}(-?\\d+)"`, 'g'), '$1.0') + '\n';
}

/**
 * The kinds of option values and what a wrong value is told (src/cli/options.ts puts the flag and the value around
 * it). Numbers are coerced: flags arrive as text.
 */
import { z } from 'zod';

const infinite = (value: unknown) => value === Infinity || value === -Infinity;

/** zod 4 refuses ±Infinity as no number at all; `whenInfinite` keeps the message such a value has always had. */
function number(whenInfinite: string) {
  return z.coerce.number({
    error: (issue) => (issue.code === 'invalid_type' ? (infinite(issue.input) ? whenInfinite : 'expected a number') : undefined),
  });
}

// Not zod's .int(): that refuses integers past 2^53 (a seed such as 12345678901234567890), which t5cls takes.
export const int = (min: number) => number('expected an integer').refine(Number.isInteger, 'expected an integer').min(min);
export const num = (min: number) => number('Number must be finite').min(min);
export const str = () => z.string().min(1, 'expected a non-empty value');

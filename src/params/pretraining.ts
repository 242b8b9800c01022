/** `pretrain`'s own options: span corruption, and how long and how often it runs. */
import { int, num } from './values.js';

export const noiseDensity = num(0).max(0.99).default(0.15).describe('pretrain: share of tokens replaced by sentinel spans');
export const meanNoiseSpanLength = num(1).default(3).describe('pretrain: mean length of a corrupted span');
export const steps = int(1).optional().describe('pretrain: optimizer steps to run (default: --epochs over the texts)');
export const maxMinutes = num(0).optional().describe('pretrain: stop after the step that passes this many minutes');
export const evalEverySteps = int(1).default(200).describe('pretrain: held-out denoising loss every N steps');

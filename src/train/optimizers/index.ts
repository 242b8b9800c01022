export { Adafactor, AdafactorSchedule, type AdafactorOptions } from './adafactor.js';
export { AdamW, type AdamWOptions } from './adamw.js';

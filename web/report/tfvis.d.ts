/** For the type check of report.js: the tfjs-vis bundle inlined before it defines the global `tfvis`. */
declare const tfvis: typeof import('@tensorflow/tfjs-vis');

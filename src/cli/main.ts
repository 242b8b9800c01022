/** The `t5cls` command line: one subcommand per file in this folder, options generated from src/params/commands.ts. */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { addSchemaOptions, resolveParams, type ParsedParams } from './options.js';
import { T5clsError } from '../errors.js';
import type { CommandName, CommandParams } from '../params/commands.js';

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };

interface CommandSpec<C extends CommandName> {
  summary: string;
  example: string;
  load: () => Promise<(parsed: ParsedParams<C>) => Promise<void>>;
  /** Commander syntax of the positional arguments (e.g. `[texts...]`) and where their value goes. */
  positional?: { syntax: string; assign: (params: CommandParams[C], value: unknown) => void };
}

/** Every command, in the order `t5cls --help` lists them. */
const COMMANDS: { [C in CommandName]: CommandSpec<C> } = {
  'load-dataset': {
    summary: 'download a data set (default: TweetEval emotion) and write train/validation/test JSON and the classes map',
    example: 't5cls load-dataset --subset emotion   |   t5cls load-dataset --from ../tweeteval/emotion',
    load: async () => (await import('./load_dataset.js')).run,
  },
  train: {
    summary: 'fine-tune T5 on the processed data set, validating every epoch',
    example: 't5cls train --use-adafactor   |   t5cls train --init random --model-config tiny --tokenizer ./t5-small',
    load: async () => (await import('./train.js')).run,
  },
  pretrain: {
    summary: "continue T5's own span-corruption pretraining on unlabeled text, before fine-tuning with train",
    example:
      't5cls pretrain --from tweets.txt --model t5-small   |   t5cls pretrain --from ../tweeteval/irony --init random ' +
      '--model-config tiny --tokenizer ./t5-small',
    load: async () => (await import('./pretrain.js')).run,
  },
  test: {
    summary: 'evaluate a saved checkpoint on the test split',
    example: 't5cls test --weights-name t5-small-Nov25_10-00-00-epoch3',
    load: async () => (await import('./test.js')).run,
  },
  predict: {
    summary: 'classify texts (arguments, --file, or lines on stdin) with a saved checkpoint',
    example: 't5cls predict "I love this" "so annoying"   |   t5cls predict --file tweets.jsonl --text-column text --format json',
    load: async () => (await import('./predict.js')).run,
    positional: {
      syntax: '[texts...]',
      assign: (params, texts) => {
        params.texts = texts as string[];
      },
    },
  },
  export: {
    summary:
      'write a checkpoint as ONNX files that transformers.js loads, with its tokenizer, classes and a page that classifies in the browser',
    example: 't5cls export   |   t5cls export --weights-name t5-small-Nov25_10-00-00-epoch3 --out web/model',
    load: async () => (await import('./export.js')).run,
  },
  merge: {
    summary: "fold a LoRA adapter into its base model and write a plain HF model folder (PEFT's merge_and_unload)",
    example:
      't5cls merge --adapter weights/flan-t5-base-Dec06_10-00-00-epoch3   |   t5cls merge --adapter ./adapter --model ./flan-t5-base --out ./merged',
    load: async () => (await import('./merge.js')).run,
  },
  report: {
    summary: 'write a self-contained HTML page with the charts of a run (loss, learning rate, dev metrics, test results)',
    example: 't5cls report   |   t5cls report t5-small_Nov25_14-03-59 --output run.html',
    load: async () => (await import('./report.js')).run,
    positional: {
      syntax: '[run]',
      assign: (params, run) => {
        params.run = run as string;
      },
    },
  },
  doctor: {
    summary: 'check this machine before training: Node.js, backends, GPU support, threads, memory, speed',
    example: 't5cls doctor   |   t5cls doctor --json',
    load: async () => (await import('./doctor.js')).run,
  },
};

/** Adds one command to the program; `onParsed` learns its --verbose before it runs. */
function addCommand<C extends CommandName>(program: Command, name: C, onParsed: (params: CommandParams[C]) => void): void {
  const spec: CommandSpec<C> = COMMANDS[name];
  const cmd = addSchemaOptions(new Command(name).description(spec.summary), name)
    .addHelpText('after', `\nExample:\n  ${spec.example}\n`)
    .exitOverride()
    .allowExcessArguments(false);
  if (spec.positional) cmd.argument(spec.positional.syntax);
  cmd.action(async (...args: unknown[]) => {
    const parsed = resolveParams(cmd, name);
    if (spec.positional && args[0] !== undefined) spec.positional.assign(parsed.params, args[0]);
    onParsed(parsed.params);
    const runner = await spec.load();
    await runner(parsed);
  });
  program.addCommand(cmd);
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('t5cls')
    .description('Fine-tune T5 for text classification with TensorFlow.js')
    .version(pkg.version)
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let verbose = argv.includes('--verbose');
  for (const name of Object.keys(COMMANDS) as CommandName[]) {
    addCommand(program, name, (params) => {
      verbose = params.verbose;
    });
  }
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    return reportError(e, verbose);
  }
}

/** A WebAssembly heap that could not grow: the wasm backend's allocation failures as tfjs-wasm reports them. */
function outOfWasmMemory(e: Error | undefined): boolean {
  const text = String(e?.message ?? '');
  return (
    (e instanceof WebAssembly.RuntimeError || /^Aborted\(/.test(text)) && /memory access out of bounds|Aborted\(|out of memory/i.test(text)
  );
}

/** Prints an error as one line (the stack with --verbose) and returns the exit code. */
export function reportError(e: unknown, verbose: boolean): number {
  if (e instanceof CommanderError) {
    // commander has already printed its message; --help and --version end with code 0.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
    return 2;
  }
  if (e instanceof T5clsError) {
    console.error(`t5cls: error: ${e.message}`);
    if (verbose && e.stack) console.error(e.stack);
    return e.exitCode;
  }
  const err = e as Error;
  if (outOfWasmMemory(err)) {
    // The estimate let the job onto wasm, but its heap (4 GiB at most) ran out: say what to do instead.
    console.error(
      `t5cls: error: the wasm backend ran out of memory (its heap holds 4 GiB at most; ${err.message}); run again with ` +
        '--backend cpu, whose tensors have no such ceiling, or with a smaller --batch-size',
    );
    if (verbose && err?.stack) console.error(err.stack);
    return 1;
  }
  console.error(`t5cls: error: ${err?.message ?? String(e)}`);
  if (verbose && err?.stack) console.error(err.stack);
  else console.error('(run again with --verbose for the stack trace)');
  return 1;
}

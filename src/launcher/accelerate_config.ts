/**
 * The accelerate config YAML (and DeepSpeed config JSON) of a job, as `accelerate config` writes them: one file
 * for every machine of the cluster (each passes its own --machine_rank), valid for a GPU cluster unchanged. On a
 * machine with no GPU the training script starts the same processes on the CPU (gloo).
 */
import { stringify } from 'yaml';
import type { Cluster } from './cluster.js';

export const ACCELERATE_CONFIG_FILE = 'accelerate_config.yaml';
export const DEEPSPEED_CONFIG_FILE = 'deepspeed_config.json';

/** accelerate's `distributed_type` for the cluster. */
export function distributedType(c: Cluster): 'NO' | 'MULTI_GPU' | 'DEEPSPEED' | 'FSDP' {
  if (c.deepspeedStage !== undefined) return 'DEEPSPEED';
  if (c.fsdp) return 'FSDP';
  return c.numProcesses > 1 ? 'MULTI_GPU' : 'NO';
}

export function accelerateConfig(c: Cluster): Record<string, unknown> {
  const config: Record<string, unknown> = {
    compute_environment: 'LOCAL_MACHINE',
    debug: false,
    distributed_type: distributedType(c),
    downcast_bf16: 'no',
    enable_cpu_affinity: false,
    gpu_ids: 'all',
    machine_rank: c.machineRank,
    main_training_function: 'main',
    num_machines: c.numMachines,
    num_processes: c.numProcesses,
    rdzv_backend: 'static',
    same_network: true,
    tpu_env: [],
    tpu_use_cluster: false,
    tpu_use_sudo: false,
    use_cpu: false,
  };
  if (c.numMachines > 1) {
    config.main_process_ip = c.mainProcessIp;
    config.main_process_port = c.mainProcessPort;
  } else if (c.mainProcessPort !== undefined) {
    config.main_process_port = c.mainProcessPort;
  }
  // With a DeepSpeed config file, accelerate takes the precision from it ("auto": the script's choice).
  if (c.deepspeedStage === undefined) config.mixed_precision = c.mixedPrecision === 'auto' ? 'no' : c.mixedPrecision;
  if (c.deepspeedStage !== undefined) {
    config.deepspeed_config = {
      deepspeed_config_file: DEEPSPEED_CONFIG_FILE,
      deepspeed_multinode_launcher: 'standard',
      zero3_init_flag: false,
    };
  }
  if (c.fsdp) {
    config.fsdp_config = {
      fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP',
      fsdp_transformer_layer_cls_to_wrap: 'T5Block',
      fsdp_backward_prefetch: 'BACKWARD_PRE',
      fsdp_cpu_ram_efficient_loading: true,
      fsdp_forward_prefetch: false,
      fsdp_offload_params: false,
      fsdp_sharding_strategy: 'FULL_SHARD',
      fsdp_state_dict_type: 'FULL_STATE_DICT',
      fsdp_sync_module_states: true,
      fsdp_use_orig_params: true,
      fsdp_version: 1,
    };
  }
  return config;
}

export function accelerateConfigText(c: Cluster): string {
  // PyYAML reads YAML 1.1, where a bare no is false: written as 1.1, such strings are quoted.
  return stringify(accelerateConfig(c), { version: '1.1' });
}

/**
 * DeepSpeed's config for ZeRO stage 2 or 3 with t5cls's own optimizer as the client optimizer: no `optimizer` or
 * `scheduler` block (DeepSpeed would replace the optimizer with its own), `zero_allow_untested_optimizer` so that
 * ZeRO takes Adafactor; the micro-batch is each process's share of --batch-size, accumulation is DeepSpeed's
 * (the script scales nothing by it), no gradient clipping (t5cls clips none).
 */
export function deepspeedConfig(c: Cluster, o: { batchSize: number; gradientAccumulationSteps: number }): Record<string, unknown> {
  const stage = c.deepspeedStage!;
  const zero: Record<string, unknown> = {
    stage,
    overlap_comm: true,
    contiguous_gradients: true,
    reduce_bucket_size: 'auto',
  };
  if (stage === 3) {
    Object.assign(zero, {
      stage3_prefetch_bucket_size: 'auto',
      stage3_param_persistence_threshold: 'auto',
      stage3_gather_16bit_weights_on_model_save: true,
    });
  } else {
    Object.assign(zero, { allgather_partitions: true, reduce_scatter: true, allgather_bucket_size: 2e8 });
  }
  return {
    train_micro_batch_size_per_gpu: Math.ceil(o.batchSize / c.numProcesses),
    gradient_accumulation_steps: o.gradientAccumulationSteps,
    gradient_clipping: 0,
    zero_allow_untested_optimizer: true,
    zero_optimization: zero,
    bf16: { enabled: 'auto' },
    fp16: { enabled: false },
    steps_per_print: 1e9,
    wall_clock_breakdown: false,
  };
}

#!/usr/bin/env bash
# EAPO on verl in the paper's setting: DeepSeek-R1-Distill-Qwen-7B policy on one 8-GPU node,
# three QwQ-32B expert servers on a second node (2 GPUs each, tensor parallel), DAPO-Math-17k.
# NOT RUN here (no GPUs): the override keys below are checked against verl 0.9.1's config
# schema by tests/integrations/test_verl_adapter.py (hydra compose), nothing more.
#
# 0. pip install "eapo[verl]"   (verl 0.9.1 pins transformers<5.11: use its own environment)
# 1. Expert servers (second node), one per port or host:
#      vllm serve Qwen/QwQ-32B --tensor-parallel-size 2 --port 8000 --max-model-len 32768 \
#           --gpu-memory-utilization 0.9 --enable-prefix-caching
#    and point examples/verl/eapo_dapo_math.yaml's experts at them.
# 2. Data: python examples/verl/prepare_dapo_math.py --out $DATA   (rows with agent_name eapo_agent)
# 3. This script, from the repository root.
set -euo pipefail
DATA=${DATA:-$HOME/data/eapo}

python3 -m verl.trainer.main_ppo \
    algorithm.adv_estimator=grpo \
    algorithm.norm_adv_by_std_in_grpo=true \
    algorithm.use_kl_in_reward=false \
    data.train_files=$DATA/dapo_math_17k.parquet \
    data.val_files=$DATA/aime2024.parquet \
    data.train_batch_size=128 \
    data.max_prompt_length=2048 \
    data.max_response_length=14336 \
    data.return_raw_chat=true \
    actor_rollout_ref.model.path=deepseek-ai/DeepSeek-R1-Distill-Qwen-7B \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=32 \
    actor_rollout_ref.actor.use_dynamic_bsz=true \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=32768 \
    actor_rollout_ref.actor.use_kl_loss=false \
    actor_rollout_ref.actor.kl_loss_coef=0.0 \
    actor_rollout_ref.actor.clip_ratio_low=0.2 \
    actor_rollout_ref.actor.clip_ratio_high=0.28 \
    actor_rollout_ref.actor.loss_agg_mode=token-mean \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.mode=async \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.temperature=1.0 \
    actor_rollout_ref.rollout.top_p=1.0 \
    actor_rollout_ref.rollout.calculate_log_probs=true \
    actor_rollout_ref.rollout.tensor_model_parallel_size=1 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    actor_rollout_ref.rollout.multi_turn.enable=true \
    actor_rollout_ref.rollout.agent.num_workers=8 \
    actor_rollout_ref.rollout.agent.default_agent_loop=eapo_agent \
    actor_rollout_ref.rollout.agent.agent_loop_config_path=examples/verl/agent_loop.yaml \
    +actor_rollout_ref.rollout.agent.agent_loop_manager_class=eapo.integrations.verl.agent_loop.EAPOAgentLoopManager \
    actor_rollout_ref.rollout.val_kwargs.n=32 \
    actor_rollout_ref.rollout.val_kwargs.temperature=0.6 \
    actor_rollout_ref.rollout.val_kwargs.top_p=0.95 \
    actor_rollout_ref.rollout.val_kwargs.do_sample=true \
    trainer.n_gpus_per_node=8 \
    trainer.nnodes=1 \
    trainer.total_training_steps=500 \
    trainer.save_freq=50 \
    trainer.test_freq=25 \
    trainer.project_name=eapo \
    trainer.experiment_name=dapo_math_7b_qwq32b_k3 \
    "$@"

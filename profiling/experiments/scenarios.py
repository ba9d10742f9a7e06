"""Model scenarios: a ResNet block stack and a Wide & Deep model with the activation swappable.

A facade over the three jobs: the models (profiling.experiments.scenario_models: configuration,
Keras models, synthetic data, steps), the running (scenario_run: timing, traces, which
activations fused, losses) and the saving (scenario_save: the run's cases and fusion rows).
"""

from __future__ import annotations

from profiling.experiments.scenario_models import (
    MODELS,
    ScenarioConfig,
    ScenarioError,
    activation_layer,
    activation_sites,
    build_model,
    build_resnet,
    build_wide_deep,
    check_memory,
    input_numel,
    input_shape_text,
    make_steps,
    parse_hidden,
    parse_variant,
    synthetic_data,
    training_numel,
    unsupported_reason,
    validated_params,
)
from profiling.experiments.scenario_run import (
    SUMMARY_COLUMNS,
    ScenarioResult,
    fusion_sites,
    measure_step,
    op_stats,
    run_scenario,
)
from profiling.experiments.scenario_save import process_settings, save_scenario, scenario_case

__all__ = [
    "MODELS", "SUMMARY_COLUMNS", "ScenarioConfig", "ScenarioError", "ScenarioResult",
    "activation_layer", "activation_sites", "build_model", "build_resnet", "build_wide_deep",
    "check_memory", "fusion_sites", "input_numel", "input_shape_text", "make_steps",
    "measure_step", "op_stats", "parse_hidden", "parse_variant", "process_settings",
    "run_scenario", "save_scenario", "scenario_case", "synthetic_data", "training_numel",
    "unsupported_reason", "validated_params",
]

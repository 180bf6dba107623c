"""Typed configuration of `softtargets amnesia`: defaults <- --config FILE <- CLI flags, validated once.

The defaults are CPU-sized for the embedded digits dataset (minutes on 2 cores). The seed's full-scale
MNIST settings (clear-nus/selective-amnesia) ship as configs/amnesia/full.yaml.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from softtargets.config import TrainConfig, _coerce, build_section, read_yaml
from softtargets.errors import SoftTargetsError

SURROGATES = {
    "noise": "uniform-noise images U[0,1] for the forgotten labels (the seed's surrogate q(x|c_f))",
    "soft-label": "what the frozen model generates for a soft label (a mixture over the remembered classes); "
                  "the CVAE analogue of soft targets, an extension of the seed",
}


@dataclass(frozen=True)
class AmnesiaDataConfig:
    dataset: str = "digits"
    forget: str = "0"  # labels to forget: "0" or "0,1" (class:0,1 is accepted too)
    root: str = "data"


@dataclass(frozen=True)
class CVAEConfig:
    """The CVAE (seed: 784+10 -> 512 -> 256 -> z 8) and its training (seed: 100k steps, Adam 1e-4, batch 256)."""

    h_dim1: int = 512
    h_dim2: int = 256
    z_dim: int = 8
    steps: int = 1500
    batch_size: int = 256
    lr: float = 1e-3


@dataclass(frozen=True)
class ForgetConfig:
    """Fisher estimate and the Selective Amnesia step (seed: 50k Fisher samples, 10k steps, Adam 1e-4, batch 256,
    lambda 100, gamma 1)."""

    fisher_samples: int = 2000
    steps: int = 500
    batch_size: int = 256
    lr: float = 1e-3
    lam: float = 100.0  # weight of the EWC penalty
    gamma: float = 1.0  # weight of the generative-replay term
    surrogate: str = "noise"
    soft_concentration: float | None = None  # soft-label only: None = the uniform mixture, else Dirichlet(alpha)
    log_every: int = 50


def default_judge() -> TrainConfig:
    """The judge classifier: the package's CNN, trained on the real train split (seed: a small BN CNN,
    Adam 1e-4, 20 epochs, batch 64 on MNIST)."""
    return TrainConfig(architecture="cnn", optimizer="adam", lr=1e-3, batch_size=64, epochs=20)


@dataclass(frozen=True)
class AmnesiaConfig:
    data: AmnesiaDataConfig = AmnesiaDataConfig()
    cvae: CVAEConfig = CVAEConfig()
    forgetting: ForgetConfig = ForgetConfig()
    judge: TrainConfig = field(default_factory=default_judge)
    samples_per_class: int = 1000  # generations per class the judge evaluates (seed: 1,000)
    seed: int = 0
    device: str = "auto"
    out: str = "runs"
    cache_dir: str = ".cache/softtargets"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"data": AmnesiaDataConfig, "cvae": CVAEConfig, "forgetting": ForgetConfig, "judge": TrainConfig}
TOP_LEVEL = ("samples_per_class", "seed", "device", "out", "cache_dir")


def amnesia_config_from_dict(values: dict, source: str = "command line",
                             overrides: dict | None = None) -> AmnesiaConfig:
    """Build and type-check an AmnesiaConfig from a mapping (a YAML file's content) and dotted overrides."""
    for key in values:
        if key not in SECTIONS and key not in TOP_LEVEL:
            raise SoftTargetsError(f"{source}: unknown key '{key}' (allowed: {', '.join([*SECTIONS, *TOP_LEVEL])})")
    defaults = AmnesiaConfig()
    layered = {name: {**dataclasses.asdict(getattr(defaults, name)), **_mapping(values, name, source)}
               for name in SECTIONS}
    top = {k: values[k] for k in TOP_LEVEL if k in values}
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        name, _, key = dotted.rpartition(".")
        (layered[name] if name else top)[key] = value
    sections = {name: build_section(cls, layered[name], source, name) for name, cls in SECTIONS.items()}
    hints = typing.get_type_hints(AmnesiaConfig)
    return AmnesiaConfig(**sections, **{k: _coerce(v, hints[k], f"{source}: '{k}'") for k, v in top.items()})


def load_amnesia_config(config_file: str | None = None, overrides: dict | None = None) -> AmnesiaConfig:
    """Resolve the configuration; overrides use dotted keys, e.g. {'forgetting.lam': 50, 'seed': 1}."""
    values = read_yaml(config_file) if config_file else {}
    return amnesia_config_from_dict(values, str(config_file) if config_file else "command line", overrides)


def _mapping(values: dict, name: str, source: str) -> dict:
    section = values.get(name) or {}
    if not isinstance(section, dict):
        raise SoftTargetsError(f"{source}: section '{name}' must be a mapping")
    return section


def parse_forget_labels(spec: str, num_classes: int) -> list[int]:
    """'0' / '0,1' / 'class:0,1' -> sorted distinct labels; every class forgotten is an error."""
    text = spec.removeprefix("class:")
    try:
        labels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise SoftTargetsError(f"--forget '{spec}' must be class labels like 0 or 0,1") from None
    if not labels:
        raise SoftTargetsError(f"--forget '{spec}' names no label: give one like 0 or 0,1")
    if labels[0] < 0 or labels[-1] >= num_classes:
        raise SoftTargetsError(f"--forget '{spec}': labels must be in 0..{num_classes - 1}")
    if len(labels) == num_classes:
        raise SoftTargetsError(f"--forget '{spec}' forgets every class: leave at least one class to remember")
    return labels


def check_surrogate(name: str) -> str:
    if name not in SURROGATES:
        raise SoftTargetsError(f"unknown surrogate '{name}': choose one of {', '.join(SURROGATES)}")
    return name

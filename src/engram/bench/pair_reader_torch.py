"""Fine-tuning the pair reader (``engram.read.pair_reader``) with torch: needed only to refit it (``engram bench
fit-pair-reader``), never to run it. Imports nothing of Engram, so that it also runs where only torch and
numpy are installed (a GPU machine for experiments).

The model is MiniLM-L6 computed exactly as the ONNX graph computes it, from the base parameters (canonical
names of ``engram.read.pair_reader.parameter_names``), frozen; every linear layer gets a low-rank update
``scale * a @ b`` (``b`` starts at zero, so training starts from the base model), and its bias, the layer norms,
the token-type embeddings and a linear head on the [CLS] state are trained. Training is seeded and
deterministic on one machine: examples are shuffled by a seeded generator, and torch's algorithms are the
deterministic ones."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional

HIDDEN, HEADS, LAYERS = 384, 12, 6
LINEAR_NAMES = ("query", "key", "value", "attention_output", "intermediate", "output")
NORM_EPSILON = 1e-12


@dataclass(frozen=True)
class Settings:
    """How the reader is fine-tuned: the adapters' rank and scale, the optimiser's learning rate and weight
    decay, epochs, batch size and seed. The defaults were chosen among five settings by leave-one-source-out
    pair accuracy (docs/BENCHMARKS.md, "Seventh session"); a learning rate of 2e-3 diverged on two sources."""

    rank: int = 8
    scale: float = 2.0
    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    epochs: int = 4
    batch_size: int = 16
    seed: int = 0


class LowRankLinear(nn.Module):
    """``x @ weight + scale * (x @ lora_a) @ lora_b + bias`` with ``weight`` frozen."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, rank: int, scale: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(weight), requires_grad=False)
        self.bias = nn.Parameter(torch.tensor(bias))
        self.lora_a = nn.Parameter(torch.randn(weight.shape[0], rank) / math.sqrt(weight.shape[0]))
        self.lora_b = nn.Parameter(torch.zeros(rank, weight.shape[1]))
        self.scale = scale

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs @ self.weight + self.scale * ((inputs @ self.lora_a) @ self.lora_b) + self.bias


def _norm(parameters: Mapping[str, np.ndarray], prefix: str) -> nn.LayerNorm:
    norm = nn.LayerNorm(HIDDEN, eps=NORM_EPSILON)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor(parameters[f"{prefix}.weight"]))
        norm.bias.copy_(torch.tensor(parameters[f"{prefix}.bias"]))
    return norm


class Block(nn.Module):
    """One transformer block of MiniLM (post-norm, exact GELU)."""

    def __init__(self, parameters: Mapping[str, np.ndarray], layer: int, settings: Settings) -> None:
        super().__init__()
        self.linears = {name: LowRankLinear(parameters[f"layer.{layer}.{name}.weight"],
                                            parameters[f"layer.{layer}.{name}.bias"], settings.rank, settings.scale)
                        for name in LINEAR_NAMES}
        self.linear_modules = nn.ModuleDict(self.linears)
        self.attention_norm = _norm(parameters, f"layer.{layer}.attention_norm")
        self.output_norm = _norm(parameters, f"layer.{layer}.output_norm")

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = states.shape

        def heads(values: torch.Tensor) -> torch.Tensor:
            return values.view(batch, tokens, HEADS, HIDDEN // HEADS).transpose(1, 2)

        linear = self.linears
        scores = heads(linear["query"](states)) @ heads(linear["key"](states)).transpose(-1, -2)
        attention = (scores / math.sqrt(HIDDEN // HEADS) + mask).softmax(-1) @ heads(linear["value"](states))
        states = self.attention_norm(states + linear["attention_output"](
            attention.transpose(1, 2).reshape(batch, tokens, HIDDEN)))
        return self.output_norm(states + linear["output"](functional.gelu(linear["intermediate"](states))))


class ReaderModel(nn.Module):
    """MiniLM-L6 with low-rank adapters and a linear head on the [CLS] state: one logit per pair."""

    def __init__(self, parameters: Mapping[str, np.ndarray], settings: Settings) -> None:
        super().__init__()
        self.word = nn.Parameter(torch.tensor(parameters["embeddings.word"]), requires_grad=False)
        self.position = nn.Parameter(torch.tensor(parameters["embeddings.position"]), requires_grad=False)
        self.token_type = nn.Parameter(torch.tensor(parameters["embeddings.token_type"]))
        self.embedding_norm = _norm(parameters, "embeddings.norm")
        self.blocks = [Block(parameters, layer, settings) for layer in range(LAYERS)]
        self.block_modules = nn.ModuleList(self.blocks)
        self.head = nn.Linear(HIDDEN, 1)
        with torch.no_grad():
            self.head.weight.zero_()
            self.head.bias.zero_()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        states = self.embedding_norm(self.word[ids] + self.position[positions][None] + self.token_type[types])
        additive = (1.0 - mask[:, None, None, :].float()) * -1e4
        for block in self.blocks:
            states = block(states, additive)
        return self.head(states[:, 0]).squeeze(-1)

    def tuned(self) -> dict[str, np.ndarray]:
        """What ``engram.read.pair_reader`` loads: adapters, biases, norms, token types and the head, by name."""
        values = {"embeddings.token_type": self.token_type, "embeddings.norm.weight": self.embedding_norm.weight,
                  "embeddings.norm.bias": self.embedding_norm.bias, "head.weight": self.head.weight.reshape(-1),
                  "head.bias": self.head.bias}
        for layer, block in enumerate(self.blocks):
            for name, linear in block.linears.items():
                values |= {f"layer.{layer}.{name}.lora_a": linear.lora_a, f"layer.{layer}.{name}.lora_b": linear.lora_b,
                           f"layer.{layer}.{name}.bias": linear.bias}
            for name in ("attention_norm", "output_norm"):
                norm = getattr(block, name)
                values |= {f"layer.{layer}.{name}.weight": norm.weight, f"layer.{layer}.{name}.bias": norm.bias}
        return {name: value.detach().cpu().numpy().astype(np.float32) for name, value in values.items()}


@dataclass(frozen=True)
class PairExample:
    """One pair to learn: its two segments (already tokenised: ids and token types), the label (the newer
    replaced the older, for the question asked), its weight in the loss and its source."""

    ids: list[int]
    types: list[int]
    label: float
    weight: float = 1.0
    source: str = ""


def _batch(examples: Sequence[PairExample], device: str) -> tuple[torch.Tensor, ...]:
    width = max(len(example.ids) for example in examples)

    def padded(rows: list[list[int]]) -> torch.Tensor:
        return torch.tensor([row + [0] * (width - len(row)) for row in rows], device=device)

    return (padded([example.ids for example in examples]),
            padded([[1] * len(example.ids) for example in examples]),
            padded([example.types for example in examples]),
            torch.tensor([example.label for example in examples], device=device),
            torch.tensor([example.weight for example in examples], device=device))


def train_reader(parameters: Mapping[str, np.ndarray], examples: Sequence[PairExample], settings: Settings, *,
                 device: str = "cpu", progress: Callable[[int, int], Any] | None = None) -> ReaderModel:
    """Fine-tune a ``ReaderModel`` on ``examples`` (weighted binary cross-entropy, AdamW, a linear warm-up over
    the first tenth of the steps and a linear decay to zero), seeded by ``settings.seed``."""
    torch.manual_seed(settings.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    model = ReaderModel(parameters, settings).to(device)
    model.train()
    order = list(examples)
    shuffle = random.Random(settings.seed)
    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay)
    per_epoch = math.ceil(len(order) / settings.batch_size)
    steps = settings.epochs * per_epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / max(1.0, 0.1 * steps)) * max(0.0, 1 - step / steps))
    done = 0
    for _ in range(settings.epochs):
        shuffle.shuffle(order)
        for start in range(0, len(order), settings.batch_size):
            ids, mask, types, labels, weights = _batch(order[start:start + settings.batch_size], device)
            loss = (functional.binary_cross_entropy_with_logits(model(ids, mask, types), labels, reduction="none")
                    * weights).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            done += 1
            if progress is not None:
                progress(done, steps)
    model.eval()
    return model


def reader_logits(model: ReaderModel, examples: Sequence[PairExample], *, device: str = "cpu",
                  batch_size: int = 64) -> np.ndarray:
    """The model's logit of each example."""
    logits = []
    with torch.no_grad():
        for start in range(0, len(examples), batch_size):
            ids, mask, types, _, _ = _batch(examples[start:start + batch_size], device)
            logits.append(model(ids, mask, types).cpu().numpy())
    return np.concatenate(logits) if logits else np.zeros(0, dtype=np.float32)

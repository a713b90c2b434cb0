"""``engram bench fit-pair-reader``: fine-tune the pair reader of read-time supersession
(``engram.read.pair_reader``) on the read examples of ``engram bench fit-updates`` (``engram.bench.fit_read``:
the pairs of each question's best candidates in the written training pairs and the seen update sets).

Needs torch (``pip install torch``; only for fitting). The examples are labelled as the linear read model's
are, with counter-examples of unrelated news added (``unrelated_news_rows``); changes and co-existing facts weigh
the same (``fit_read.balance``). ``--held-out`` leaves sources out and reports the reader on them (their
counter-examples included); ``--leave-one-source-out`` fits once per source (slow on a CPU: run it where a GPU
is, with ``--device cuda``). The shipped reader is fitted on every source with the default ``Settings``."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from engram.bench.fit_read import (
    PAIRS_FILES,
    TRAINING_SETS,
    ReadExample,
    balance,
    training_data_sha256,
    training_examples,
)
from engram.embed.base import Embedder
from engram.errors import ConfigurationError
from engram.read.pair_reader import MAX_TOKENS, READER_MANIFEST, READER_WEIGHTS, reader_segments, reader_tokenizer

#: Seed of the draw of ``unrelated_news_rows``.
UNRELATED_SEED = 0
INSTALL_HINT = ("fitting the pair reader needs torch: pip install torch (CPU wheels: "
                "pip install torch --index-url https://download.pytorch.org/whl/cpu)")


def example_rows(examples: Sequence[ReadExample]) -> list[dict[str, Any]]:
    """The examples as plain rows (what the reader reads, the label, the source and scenario), for a file."""
    return [{"first": first, "second": second, "label": float(example.label), "source": example.group,
             "scenario": example.scenario}
            for example in examples
            for first, second in [reader_segments(example.question, example.tense, example.older, example.text)]]


def unrelated_news_rows(examples: Sequence[ReadExample], embedder: Embedder) -> list[dict[str, Any]]:
    """For each question about the present, its older turn against the newer turn of another scenario of the same
    source, about another kind of fact, that a window could pair with it (similarity at least
    ``MIN_SIMILARITY``), drawn by a seeded generator: news that replaced nothing (label 0). The update sets'
    windows hold few such turns, but a real store's hold many ("Inês arrived yesterday! We went to the
    Gulbenkian museum" after "I just moved to Lisbon"); without them the reader learns that news replaces. Of
    the same source, so that a source left out of a fit leaves none of its turns behind (drawn from every
    source, a left-out source's changes were learnt as unrelated news, and held out its current-fact@1 fell
    from 0.78 to 0.60). Drawn, not the closest: the closest turn of another scenario is often a change of the
    same fact told of someone else ("Dad finally retired" for "Where does my father work?"), which is no
    counter-example."""
    import random

    from engram.changes.pairs import MIN_SIMILARITY

    draw = random.Random(UNRELATED_SEED)
    newer = sorted({(example.text, example.kind, example.scenario, example.group) for example in examples})
    present = [example for example in examples if example.tense == "present"]
    if not present or not newer:
        return []
    newer_vectors = embedder.embed([text for text, _, _, _ in newer])
    older_vectors = embedder.embed([example.older for example in present])
    rows = []
    for example, similarities in zip(present, older_vectors @ newer_vectors.T, strict=True):
        allowed = [index for index, similarity in enumerate(similarities)
                   if newer[index][1] != example.kind and newer[index][2] != example.scenario
                   and newer[index][3] == example.group and similarity >= MIN_SIMILARITY]
        if allowed:
            text = newer[draw.choice(allowed)][0]
            first, second = reader_segments(example.question, example.tense, example.older, text)
            rows.append({"first": first, "second": second, "label": 0.0, "source": example.group,
                         "scenario": f"{example.scenario}~unrelated"})
    return rows


def tokenised(rows: Sequence[dict[str, Any]]) -> list[Any]:
    """``PairExample``s of rows (``example_rows``), tokenised as the reader tokenises and weighted so that changes
    and co-existing facts weigh the same among these rows (``fit_read.balance``)."""
    from engram.bench.pair_reader_torch import PairExample

    weights = balance([row["scenario"] for row in rows], [row["label"] >= 0.5 for row in rows])
    encodings = reader_tokenizer().encode_batch([(row["first"], row["second"]) for row in rows])
    return [PairExample(encoding.ids, encoding.type_ids, row["label"],
                        float(weights[index]) if weights is not None else 1.0, row["source"])
            for index, (row, encoding) in enumerate(zip(rows, encodings, strict=True))]


def accuracy(logits: np.ndarray, examples: Sequence[Any]) -> dict[str, float]:
    """Accuracy of the decision at even odds (logit 0) on ``examples``, and its counts."""
    predicted = logits >= 0
    labels = np.array([example.label >= 0.5 for example in examples], dtype=bool)
    return {"pairs": float(len(examples)), "replaced": float(labels.sum()), "predicted": float(predicted.sum()),
            "accuracy": float(np.mean(predicted == labels)) if len(examples) else 1.0}


def reader_rows(embedder: Embedder, cache: Path | None = None) -> tuple[list[dict[str, Any]], str]:
    """The training rows (``example_rows`` of ``fit_read.training_examples``) and their data's sha256; read from
    ``cache`` when it holds them for today's training data, else computed (about 2 minutes) and written there."""
    if cache is not None and cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("data_sha256") == training_data_sha256():
            return list(saved["rows"]), str(saved["data_sha256"])
    examples, digest = training_examples(embedder)
    rows = example_rows(examples) + unrelated_news_rows(examples, embedder)
    if cache is not None:
        cache.write_text(json.dumps({"data_sha256": digest, "rows": rows}), encoding="utf-8")
    return rows, digest


def weights_digest(tuned: dict[str, np.ndarray]) -> str:
    """The sha256 of the reader's arrays (names and float32 bytes, in name order): the same weights give the
    same digest, whatever the file's zip timestamps."""
    digest = hashlib.sha256()
    for name in sorted(tuned):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(tuned[name], dtype=np.float32).tobytes())
    return digest.hexdigest()


def fit_pair_reader(embedder: Embedder, out: Path | None = None, *, held_out: Sequence[str] = (),
                    leave_one_source_out: bool = False, device: str = "cpu", examples: Path | None = None,
                    progress: Callable[[str, int, int], Any] | None = None) -> dict[str, Any]:
    """Fine-tune the reader on every source but ``held_out`` (scored on those), optionally also once per source
    left out, and write its weights and manifest into ``out`` (default: the package's models folder).
    ``examples``: a file caching the training rows (``reader_rows``)."""
    try:
        import torch

        from engram.bench.pair_reader_torch import reader_logits, train_reader
    except ImportError as exc:
        raise ConfigurationError(f"cannot fit the pair reader: {exc}", field="torch", hint=INSTALL_HINT) from exc
    from engram.bench.pair_reader_torch import Settings
    from engram.read.pair_reader import base_parameters, folded_minilm

    settings = Settings()
    rows, digest = reader_rows(embedder, examples)
    base = base_parameters(folded_minilm())
    unknown = set(held_out) - {row["source"] for row in rows}
    if unknown:
        raise ConfigurationError(f"unknown source(s) to hold out: {', '.join(sorted(unknown))}", field="held_out",
                                 hint=f"choose from {', '.join([*PAIRS_FILES, *TRAINING_SETS])}")

    def fit(sources: set[str], label: str) -> Any:
        """A reader fitted without ``sources``."""
        return train_reader(base, tokenised([row for row in rows if row["source"] not in sources]), settings,
                            device=device,
                            progress=(lambda done, steps: progress(label, done, steps)) if progress else None)

    def score(model: Any, source: str) -> dict[str, float]:
        kept = tokenised([row for row in rows if row["source"] == source])
        return accuracy(reader_logits(model, kept, device=device), kept)

    model = fit(set(held_out), "reader")
    report: dict[str, Any] = {"held_out": {source: score(model, source) for source in held_out}}
    if leave_one_source_out:
        report["leave_one_source_out"] = {source: score(fit({source}, f"without {source}"), source)
                                          for source in sorted({row["source"] for row in rows})}
    tuned = model.tuned()
    weights = io.BytesIO()
    np.savez_compressed(weights, **tuned)
    manifest = {"scale": settings.scale, "settings": asdict(settings), "max_tokens": MAX_TOKENS,
                "data_sha256": digest, "training_data": [*PAIRS_FILES, *TRAINING_SETS], "held_out": list(held_out),
                "embedder": embedder.signature, "examples": sum(row["source"] not in held_out for row in rows),
                "device": device, "torch": torch.__version__, "weights_sha256": weights_digest(tuned),
                "report": report}
    target = out or Path(str(resources.files("engram").joinpath("data", "models")))
    target.mkdir(parents=True, exist_ok=True)
    (target / READER_WEIGHTS).write_bytes(weights.getvalue())
    (target / READER_MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest

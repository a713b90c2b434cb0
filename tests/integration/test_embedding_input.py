"""Every path that embeds a stored memory embeds the same text for it (``write.keys.embedding_input``): a dump
imported without its vectors gets back the vectors the write path gave, turns and experience cases alike."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engram import Memory
from engram.embed.base import Embedder

WHEN = "2024-05-01T10:00:00Z"


def test_a_dump_without_vectors_is_imported_with_the_vectors_the_write_path_gave(tmp_path: Path,
                                                                                  embedder: Embedder) -> None:
    with Memory(path=str(tmp_path / "source.db"), embedder=embedder) as source:
        source.add([{"role": "user", "content": "I moved to Lisbon last spring."},
                    {"role": "assistant", "content": "Lisbon is lovely in May."},
                    {"role": "user", "content": "My sister Ana visits me in June."}], user_id="u", timestamp=WHEN)
        source.add_experience(task="deploy the web app to the staging server", outcome="success",
                              steps=["build the image", "push it", "restart the service"], user_id="u")
        records = list(source.export())
        ids = [record["data"]["id"] for record in records if record["type"] == "memory"]
        written = source.store.get_vectors(ids)
    for record in records:
        record.pop("vector", None)
        record.pop("turn_vector", None)
    with Memory(path=str(tmp_path / "copy.db"), embedder=embedder) as copy:
        copy.import_records(json.loads(json.dumps(records)))
        imported = copy.store.get_vectors(ids)
        kinds = {item["id"]: item["kind"] for item in copy.get_all(user_id="u")["results"]}
    assert set(kinds.values()) == {"episode", "experience"}
    for memory_id in ids:
        assert np.allclose(imported[memory_id], written[memory_id], atol=1e-5), kinds.get(memory_id)

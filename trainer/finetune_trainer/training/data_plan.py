"""From the spec's dataset section to tokenized train and eval sets, with the hygiene report."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune_api.measurements import DataHygiene
from finetune_api.resolve import eval_source, resolve_task
from finetune_api.resolved import ClassificationTask, EvalFile, ResolvedSpec
from finetune_api.storage_uri import parse_uri
from finetune_api.v1alpha1.job import FineTuneJobSpec

from ..data import hygiene
from ..data.files import format_of, read_table, require_file
from ..data.records import Record, to_records
from ..data.tokenize import TokenizedSet, tokenize_causal, tokenize_classification
from ..errors import DataError
from ..storage import open_store
from ..storage.store import sha256_file

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    train_records: list[Record]
    eval_records: list[Record]
    labels: list[str] | None
    report: DataHygiene
    hashes: dict[str, str] = field(default_factory=dict)
    train: TokenizedSet | None = None
    eval: TokenizedSet | None = None


def fetch_file(uri: str, spec: FineTuneJobSpec, dest_dir: Path) -> Path:
    parsed = parse_uri(uri)
    if parsed.kind != "s3":
        local = Path(parsed.key).expanduser()
        require_file(local, uri)
        return local
    store = open_store(uri.rsplit("/", 1)[0] + "/", spec.s3)
    name = uri.rsplit("/", 1)[-1]
    dest = dest_dir / hashlib.sha256(uri.encode()).hexdigest()[:12] / name
    listed = next((o for o in store.list_objects(name) if o.key == name), None) if dest.is_file() else None
    if listed is not None and listed.size == dest.stat().st_size:
        log.info("%s already in %s", uri, dest)  # an earlier run of the same experiment fetched it
        return dest
    store.download(name, dest)
    return dest


def load_records(spec: FineTuneJobSpec, work: Path) -> PreparedData:
    """The rows of the training and eval files as records. Read before the model is fetched (a bad file fails
    in seconds, not after gigabytes of weights), so through resolve's own rules for the columns and the eval
    rows rather than the resolved spec, which needs the model's facts."""
    ds, task = spec.dataset, resolve_task(spec.task)
    report = DataHygiene()
    train_path = fetch_file(ds.train, spec, work / "data")
    hashes = {ds.train: sha256_file(train_path)}
    train = to_records(read_table(train_path, format_of(ds.train, ds.format), ds.encoding, ds.train), task, ds.train)
    report.train_rows_read = len(train)
    train = hygiene.drop_empty(train, report, ds.train)
    if ds.deduplicate:
        train = hygiene.deduplicate(train, report)
    classification = isinstance(task, ClassificationTask)
    source = eval_source(ds)
    if isinstance(source, EvalFile):
        eval_path = fetch_file(source.uri, spec, work / "data")
        hashes[source.uri] = sha256_file(eval_path)
        evaluation = to_records(
            read_table(eval_path, format_of(source.uri, ds.format), ds.encoding, source.uri), task, source.uri
        )
        report.eval_rows_read = len(evaluation)
        evaluation = hygiene.drop_empty(evaluation, report, source.uri)
        if not evaluation:
            raise DataError(
                f"{source.uri}: every one of its {report.eval_rows_read} rows is empty or blank, so nothing is left to "
                "evaluate on; fill the file, or leave spec.dataset.eval out to hold out spec.dataset.evalSplit of "
                "the training rows"
            )
    else:
        train, evaluation = hygiene.split(train, source.fraction, spec.training.seed, stratify=classification)
        report.eval_rows_read = len(evaluation)
    hygiene.check_overlap(train, evaluation, ds.allow_overlap, report)
    evaluation = hygiene.sample(evaluation, ds.max_eval_samples, spec.training.seed)
    # Classification keeps in training every label the evaluation rows hold (or says which it lost).
    eval_labels = {r.label for r in evaluation if r.label is not None} if classification else None
    train = hygiene.sample(train, ds.max_samples, spec.training.seed, keep_labels=eval_labels)
    if not train:
        raise DataError(f"{ds.train}: no training rows left after dropping empty and duplicate rows")
    if not evaluation:
        raise DataError("no evaluation rows: give spec.dataset.eval or a larger evalSplit")
    labels = None
    if classification:
        _require_labels(train, ds.train)
        _require_labels(evaluation, ds.eval or ds.train)
        labels = list(task.labels) if task.labels else sorted({r.label for r in train if r.label is not None})
        if len(labels) < 2:
            raise DataError(f"{ds.train}: found a single label {labels}; classification needs at least two")
        report.label_counts = hygiene.count_labels(train)
        report.eval_label_counts = hygiene.count_labels(evaluation)
    return PreparedData(train, evaluation, labels, report, hashes)


def _require_labels(records: list[Record], source: str) -> None:
    for r in records:
        if r.label is None:
            raise DataError(f"{source}: {r.row} has an empty label; fill it or drop the row")


def tokenize(data: PreparedData, spec: ResolvedSpec, tokenizer: Any) -> None:
    max_length, task = spec.dataset.max_length, spec.task
    if isinstance(task, ClassificationTask):
        if data.labels is None:
            raise DataError("classification needs labels; none were found")
        ids = {label: i for i, label in enumerate(data.labels)}
        data.train = tokenize_classification(data.train_records, tokenizer, ids, max_length, spec.dataset.train)
        data.eval = tokenize_classification(
            data.eval_records, tokenizer, ids, max_length, spec.dataset.eval or spec.dataset.train
        )
    else:
        data.train = tokenize_causal(data.train_records, tokenizer, task.format, max_length)
        data.eval = tokenize_causal(data.eval_records, tokenizer, task.format, max_length)
    data.report.truncated_rows = data.train.truncated + data.eval.truncated
    if not len(data.train) or not len(data.eval):
        raise DataError(
            "no usable rows after tokenization (every prompt filled spec.dataset.maxLength); raise maxLength"
        )

"""REST paths of the objects the operator writes: the core group under /api, the rest under /apis."""

from __future__ import annotations

from finetune_operator.kube import PLURALS, collection, object_path


def test_core_and_group_collections() -> None:
    assert collection("v1", "ConfigMap", "ml") == "/api/v1/namespaces/ml/configmaps"
    assert collection("batch/v1", "Job", "ml") == "/apis/batch/v1/namespaces/ml/jobs"
    assert collection("rbac.authorization.k8s.io/v1", "RoleBinding", "ml") == (
        "/apis/rbac.authorization.k8s.io/v1/namespaces/ml/rolebindings"
    )
    assert object_path("finetune.dev/v1alpha1", "FineTuneJob", "ml", "a b") == (
        "/apis/finetune.dev/v1alpha1/namespaces/ml/finetunejobs/a%20b"
    )


def test_every_rendered_kind_of_every_example_has_a_collection() -> None:
    from tests.unit.operator.test_render import EXAMPLES, _rendered

    kinds = {obj["kind"] for path in EXAMPLES for obj in _rendered(path)}
    assert {"Job", "Service", "ConfigMap"} <= kinds <= PLURALS.keys(), kinds - PLURALS.keys()

"""Artefacts from elsewhere are data: hand-edited, forged, malformed or older files, loaded from an attacker's or a
careless user's side. Each bad file must fail with one line naming it, and nothing in its metadata is resolved."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file

from nncompress import artefact
from nncompress.artefact import file
from nncompress.artefact.export import export
from nncompress.errors import UserError

from conftest import run_python
from test_artefact import FAMILIES, MEAN_STD, PRUNED, population_model, prune_, record

TESTS = Path(__file__).parent
SECRET = "NNCOMPRESS_TEST_SECRET"  # an environment variable an interpolation in a file would leak


def exported(folder: Path, family: str) -> Path:
    """Replica 0 of a tiny (untrained) population of `family`, exported as nncompress does."""
    spec, ratios = FAMILIES[family]
    model, population = population_model(spec, ratios)
    if family in PRUNED:
        prune_(model, lambda r: population.replicas[r].ratio)
    path = folder / f"{family}.safetensors"
    export(path, model, 0, record(population, 0, spec["name"], "magl1" if family in PRUNED else "none"), MEAN_STD,
           coded=family.startswith("coded-"))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("good")
    return {family: exported(folder, family) for family in FAMILIES}


def metadata(path: Path) -> dict:
    with safe_open(str(path), "pt") as f:
        return f.metadata()


def entry(path: Path) -> dict:
    """The file's metadata entry, packed (a coded file's) or not."""
    found = metadata(path)
    return json.loads(found["nncompress"] if "nncompress" in found else file.unpack(path, found[file.PACKED]))


def forge(path: Path, tensors: dict, config) -> Path:
    """Write `config` as anyone can: a digest recomputed over it, nothing checked."""
    text = file.canonical({"config": config, "sha256": file.digest(tensors, config)})
    save_file(tensors, str(path), metadata={"nncompress": text})
    return path


def edited(path: Path, out: Path, edit) -> Path:
    """`path` with its config changed by `edit(config)` in the file, as a hand edit leaves it: the digest kept."""
    written = entry(path)
    edit(written["config"])
    save_file(load_file(str(path)), str(out), metadata={"nncompress": json.dumps(written)})
    return out


def refused(path: Path, match: str) -> str:
    """The one-line UserError that loading `path` raises (it names the file and matches `match`)."""
    with pytest.raises(UserError, match=match) as err:
        artefact.load(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    return message


def setter(dotted: str, value):
    """An edit setting config[a][b]... (`value`: or a function of the old value)."""

    def edit(config):
        *parents, leaf = dotted.split(".")
        for key in parents:
            config = config[key]
        config[leaf] = value(config[leaf]) if callable(value) else value

    return edit


TAMPERED = {
    "activation": ("dense-mlp", "architecture.activation", "sigmoid"),
    "sizes": ("dense-mlp", "architecture.sizes", lambda s: [s[0], s[1] + 1, s[2]]),
    "hash_seed": ("hashed-mlp", "hash_seed", lambda s: s + 1),
    "buckets": ("hashed-mlp", "buckets", lambda b: [b[0] + 1, *b[1:]]),
    "nonzero": ("csr-mlp", "nonzero", lambda n: [n[0] - 1, *n[1:]]),
    "ratio": ("csr-mlp", "ratio", lambda r: r / 2),
    "seed": ("dense-mlp", "seed", lambda s: s + 1),
    "method": ("csr-mlp", "method", "obd"),
    "protocol": ("dense-mlp", "protocol", "paper"),
    "dataset": ("dense-mlp", "dataset.name", "mnist_rot"),
    "stride": ("convnet", "architecture.stride", lambda s: s + 1),
}


@pytest.mark.parametrize("case", TAMPERED)
def test_a_hand_edited_config_fails_its_digest(tmp_path, good, case):
    """Each field a wrong model (or a wrong record) would follow from, edited in the file: refused, not loaded."""
    family, field, value = TAMPERED[case]
    bad = edited(good[family], tmp_path / "edited.safetensors", setter(field, value))
    assert entry(bad)["config"] != entry(good[family])["config"]
    refused(bad, "checksum mismatch")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("family, tensor", [("dense-mlp", "layers.0.weight"), ("csr-mlp", "layers.1.values"),
                                            ("hashed-mlp", "layers.0.buckets"), ("convnet", "head.bias"),
                                            ("dense-mlp", "input.std")])  # fmt: skip
def test_non_finite_weights_are_refused_even_with_a_recomputed_digest(tmp_path, good, family, tensor, value):
    tensors, config = file.read(good[family])
    tensors[tensor].view(-1)[0] = value
    refused(forge(tmp_path / "nan.safetensors", tensors, config), f"tensor {tensor} holds non-finite values")
    with pytest.raises(UserError, match="non-finite"):  # nor written
        file.write(tmp_path / "never.safetensors", tensors, config)
    assert not (tmp_path / "never.safetensors").exists()


def test_a_wrong_dtype_or_tensor_name_is_refused(tmp_path, good):
    tensors, config = file.read(good["csr-mlp"])
    refused(forge(tmp_path / "a.safetensors", {**tensors, "layers.0.values": tensors["layers.0.values"].double()}, config),
            "layers.0.values is torch.float64")  # fmt: skip
    refused(forge(tmp_path / "b.safetensors", {**tensors, "layers.0.col_indices": tensors["layers.0.col_indices"].float()},
                  config), "layers.0.col_indices is torch.float32")  # fmt: skip
    refused(forge(tmp_path / "c.safetensors", {**tensors, "x\nerror: y": torch.zeros(1)}, config), "malformed name")


def without(key: str):
    def edit(config):
        del config[key]

    return edit


MALFORMED = {  # name: (family, the metadata entry as text, or an edit of the config; what the error says)
    "not JSON": ("dense-mlp", "{not json", "metadata is not valid JSON"),
    "NaN in JSON": ("dense-mlp", '{"config": {"ratio": NaN}, "sha256": "0"}', "NaN is not JSON"),
    "entry a list": ("dense-mlp", "[1, 2]", "metadata is not an object of 'config' and 'sha256'"),
    "config a list": ("dense-mlp", lambda c: [c], "the config must be a JSON object, got list"),
    "missing field": ("dense-mlp", without("ratio"), r"missing field\(s\) ratio"),
    "unknown field": ("dense-mlp", setter("hash_seed", 0), r"unknown field\(s\) hash_seed"),
    "missing buckets": ("hashed-mlp", without("buckets"), r"missing field\(s\) buckets"),
    "missing size": ("dense-mlp", lambda c: without("sizes")(c["architecture"]), r"architecture: missing field\(s\) sizes"),
    "unknown format": ("dense-mlp", setter("format", "onnx"), "format must be one of dense-mlp, csr-mlp"),
    "unknown activation": ("dense-mlp", setter("architecture.activation", "tanh"), "activation must be one of sigmoid, relu, got .tanh."),
    "architecture a string": ("dense-mlp", setter("architecture", "mlp"), "architecture must be a JSON object"),
    "ratio a string": ("dense-mlp", setter("ratio", "0.5"), "ratio must be a finite number"),
    "ratio zero": ("dense-mlp", setter("ratio", 0), r"ratio must be in \(0, 1\]"),
    "ratio above one": ("dense-mlp", setter("ratio", 1.5), r"ratio must be in \(0, 1\]"),
    "seed a float": ("dense-mlp", setter("seed", 1.5), "seed must be an int"),
    "seed a bool": ("dense-mlp", setter("seed", True), "seed must be an int"),
    "standardized a string": ("dense-mlp", setter("standardized", "yes"), "standardized must be a bool"),
    "key not hex": ("dense-mlp", setter("key", "../../etc/passwd"), "key must be 16 lowercase hex digits"),
    "method a list": ("dense-mlp", setter("method", ["obd"]), "method must be a str"),
    "size a string": ("dense-mlp", setter("architecture.sizes", [784, "100", 10]), "architecture.sizes must be an int"),
    "size zero": ("dense-mlp", setter("architecture.sizes", [784, 0, 10]), r"architecture.sizes must be in \[1, "),
    "one size": ("dense-mlp", setter("architecture.sizes", [784]), "must list 2 to"),
    "huge width": ("hashed-mlp", setter("architecture.sizes", [784, 10**12, 10]), r"architecture.sizes must be in \[1, "),
    "huge matrix": ("hashed-mlp", setter("architecture.sizes", [65536, 65536, 10]), "ask for a 4294967296-weight matrix"),
    "buckets per layer": ("hashed-mlp", setter("buckets", lambda b: b[:-1]), r"buckets must list one count per layer \(2\)"),
    "zero buckets": ("hashed-mlp", setter("buckets", lambda b: [0, *b[1:]]), r"buckets must be in \[1, 78400\]"),
    "hash_seed a string": ("hashed-mlp", setter("hash_seed", "3"), "hash_seed must be an int"),
    "negative nonzero": ("csr-mlp", setter("nonzero", lambda n: [-1, *n[1:]]), r"nonzero must be in \[0, 78400\]"),
    "kernel over the image": ("convnet", setter("architecture.kernel", 29), "leave no feature map of a 28-pixel image"),
    "channels zero": ("convnet", setter("architecture.channels", 0), r"architecture.channels must be in \[1, "),
    "unknown dataset": ("dense-mlp", setter("dataset.name", "cifar10"), "unknown dataset.name 'cifar10'"),
    "dataset field": ("dense-mlp", setter("dataset.url", "http://x"), r"dataset: unknown field\(s\) url"),
    "dataset a list": ("dense-mlp", setter("dataset", ["mnist"]), "dataset must be a JSON object"),
    "control character": ("dense-mlp", setter("commit", "\x1b[2Jerror"), "commit holds an unprintable character"),
    "interpolation in dataset": ("dense-mlp", setter("dataset.name", "${oc.env:%s}" % SECRET), "dataset.name holds an interpolation"),
    "interpolation in method": ("dense-mlp", setter("method", "${oc.env:%s}" % SECRET), "method holds an interpolation"),
    "interpolation in a key": ("dense-mlp", lambda c: c["dataset"].update({"${oc.env:%s}" % SECRET: 1}), "a key of dataset holds an interpolation"),
}


def malformed(folder: Path, good: dict, case: str) -> tuple[Path, dict, object]:
    """(the file of `case`, its tensors, the config it holds: None where its metadata entry is not one)."""
    family, change, _ = MALFORMED[case]
    path = folder / "malformed.safetensors"
    tensors, config = file.read(good[family])
    if isinstance(change, str):
        save_file(tensors, str(path), metadata={"nncompress": change})
        return path, tensors, None
    config = change(config) or config  # (the edits change it in place; "config a list" returns another)
    return forge(path, tensors, config), tensors, config


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_metadata_fails_with_one_line_even_with_a_recomputed_digest(tmp_path, good, case, monkeypatch):
    monkeypatch.setenv(SECRET, "the-secret-value")
    path, tensors, config = malformed(tmp_path, good, case)
    assert "the-secret-value" not in refused(path, MALFORMED[case][2])
    if config is not None:  # nor written
        with pytest.raises(UserError, match=MALFORMED[case][2]):
            file.write(tmp_path / "never.safetensors", tensors, config)
        assert not (tmp_path / "never.safetensors").exists()


@pytest.mark.parametrize("case", ["interpolation in dataset", "config a list"])
def test_the_measure_command_says_one_line_and_resolves_nothing(tmp_path, good, case):
    """Where main printed a traceback, or the environment variable's value (`${oc.env:...}` in the dataset)."""
    path, _, _ = malformed(tmp_path, good, case)
    proc = run_python("-m", "nncompress.artefact", path, env={SECRET: "the-secret-value"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and proc.stdout == "" and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}: invalid artefact metadata") and "Traceback" not in proc.stderr
    assert "the-secret-value" not in proc.stderr


def write_older(path: Path, tensors: dict, config: dict) -> Path:
    """An artefact as written before the digest covered the config: two entries, the config and the tensors' sha256."""
    save_file(tensors, str(path), metadata={"nncompress": json.dumps(config), "sha256": file.tensor_digest(tensors)})
    return path


def test_older_artefacts_load_with_their_tensors_verified_and_their_config_checked(tmp_path, good):
    tensors, config = file.read(good["csr-mlp"])
    older = write_older(tmp_path / "older.safetensors", tensors, config)
    x = torch.rand(40, 784)
    torch.testing.assert_close(artefact.load(older)(x), artefact.load(good["csr-mlp"])(x), rtol=0, atol=0)
    assert file.read(older)[1] == config
    flipped = bytearray(older.read_bytes())
    flipped[-3] ^= 0xFF
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    refused(tmp_path / "flipped.safetensors", "checksum mismatch")
    refused(write_older(tmp_path / "env.safetensors", tensors, {**config, "method": "${oc.env:HOME}"}), "interpolation")
    refused(write_older(tmp_path / "nan.safetensors", {**tensors, "layers.0.bias": tensors["layers.0.bias"] * torch.nan},
                        config), "non-finite")  # fmt: skip


EXPORT_AGAIN = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_artefact_trust import exported
for family in sys.argv[3:]:
    exported(Path(sys.argv[2]), family)
"""


def test_exports_of_a_replica_are_the_same_bytes(tmp_path, good):
    """Again in this process (safetensors orders its metadata map anew on each write) and in another one."""
    for family in FAMILIES:
        for i in range(3):
            assert exported(tmp_path, family).read_bytes() == good[family].read_bytes(), (family, i)
    (tmp_path / "other").mkdir()
    subprocess.run([sys.executable, "-c", EXPORT_AGAIN, str(TESTS), str(tmp_path / "other"), *FAMILIES], check=True)
    for family in FAMILIES:
        assert (tmp_path / "other" / f"{family}.safetensors").read_bytes() == good[family].read_bytes(), family

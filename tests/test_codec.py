"""Coded artefacts (`coded-mlp`, `coded-hashed-mlp`): each layer's stream decodes to exactly what was encoded, the
file runs the same logits as the plain one, a damaged one is a one-line error, and export writes the smallest."""
import zlib

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from nncompress import artefact
from nncompress.artefact import codec, file, formats
from nncompress.artefact.export import export
from nncompress.artefact.modules import SparseMLP
from nncompress.errors import UserError
from nncompress.models.mlp import PopulationMLP
from nncompress.population import Population

from conftest import run_python
from test_artefact import MEAN_STD, population_model, prune_, record
from test_artefact_trust import forge


def bits_of(t: torch.Tensor) -> torch.Tensor:
    """A float tensor's bit patterns: equal only if bit-exact (-0.0 and 0.0 differ, as NaNs would)."""
    return t.contiguous().view({torch.float32: torch.int32, torch.float16: torch.int16}[t.dtype])


def layer(shape, nonzero, levels, dtype=torch.float32, seed=0, empty_rows=()):
    """A (out, in) matrix of `nonzero` weights at random places, drawn from `levels` distinct values (None: all
    distinct), rows `empty_rows` left empty; and a bias."""
    g = torch.Generator().manual_seed(seed)
    out, n_in = shape
    free = torch.ones(shape, dtype=torch.bool)
    free[list(empty_rows)] = False
    places = torch.nonzero(free.view(-1)).view(-1)
    places = places[torch.randperm(len(places), generator=g)[:nonzero]]
    draws = torch.randn(nonzero, generator=g) if levels is None else \
        (torch.arange(1, levels + 1) * 0.37 - 0.2)[torch.randint(0, levels, (nonzero,), generator=g)]  # fmt: skip
    w = torch.zeros(out * n_in)
    w[places] = draws
    return w.view(shape).to(dtype), torch.randn(out, generator=g)


def round_trip(stream: np.ndarray, w: torch.Tensor, bias: torch.Tensor) -> None:
    positions, values, decoded_bias = codec.decode(stream, len(bias), w.numel(), int((w != 0).sum()), w.dtype)
    back = torch.zeros(w.numel(), dtype=w.dtype)
    back[torch.from_numpy(positions)] = values
    assert torch.equal(bits_of(back), bits_of(w.view(-1))) and torch.equal(bits_of(decoded_bias), bits_of(bias))


def variants(w: torch.Tensor, bias: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's stream with raw values, and with a codebook (None: no non-zero weight, or too many values)."""
    flat = w.view(-1).numpy()
    positions = np.flatnonzero(flat)
    gaps, head = np.diff(positions, prepend=-1) - 1, bias.numpy().astype("<f4").tobytes()
    book, codes = np.unique(flat[positions], return_inverse=True)
    book_fits = 0 < len(book) <= codec.MAX_CODEBOOK
    return codec.stream(head, flat[positions], gaps, None), codec.stream(head, book, gaps, codes) if book_fits else None


CASES = {  # name: (shape, non-zero weights, distinct values, empty rows)
    "empty rows": ((6, 50), 40, 4, (0, 2, 5)),
    "empty layer": ((10, 20), 0, 4, ()),
    "one weight": ((10, 20), 1, 1, ()),
    "more codes than weights (2^B > non-zeros)": ((10, 20), 3, 4, ()),
    "B=1 (two values)": ((30, 40), 300, 2, ()),
    "B=8 (256 values)": ((100, 100), 3000, 256, ()),
    "raw values (more than 256)": ((50, 60), 900, None, ()),
    "dense (every gap 0)": ((8, 9), 72, 16, ()),
    "last position": ((1, 1), 1, 1, ()),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_streams_decode_bit_exact(case, dtype):
    """Both variants of each layer decode to its bits; export's is the shorter (raw for one weight: a codebook of
    one adds its one code to the stream; the codebook wherever values repeat enough)."""
    shape, nonzero, levels, empty = CASES[case]
    w, bias = layer(shape, nonzero, levels, dtype, empty_rows=empty)
    raw, book = variants(w, bias)
    for stream in (raw, book) if book is not None else (raw,):
        round_trip(stream, w, bias)
    written = codec.encode(w, bias)
    assert np.array_equal(written, raw if book is None or len(raw) <= len(book) else book)
    if book is not None:  # K, after the bias: the distinct values' count (B=8: 256, two LEB128 bytes)
        first, second = (int(byte) for byte in book[4 * len(bias) : 4 * len(bias) + 2])
        assert first & 0x7F | (second << 7 if first & 0x80 else 0) == len(torch.unique(w[w != 0]))
    if case.startswith(("B=", "empty rows", "dense")):
        assert np.array_equal(written, book)
    if case.startswith("B=8"):
        assert len(torch.unique(w[w != 0])) == 256


def test_hand_counted_stream_and_file():
    """A 2 x 4 layer [[0, .5, 0, .5], [0, 0, 0, -1]]: the stream, part by part."""
    w = torch.tensor([[0, 0.5, 0, 0.5], [0, 0, 0, -1]])
    bias = torch.tensor([1.0, 2.0])
    stream = codec.encode(w, bias)
    # gaps 1, 1, 3 -> classes 1, 1, 2 (bit lengths), extra bits: none, none, "1" (3 = 0b11 less its leading one);
    # codebook [-1, .5], codes 1, 1, 0. After the bias, K and the codebook: a raw DEFLATE stream (read here by
    # zlib's one-shot inflate) of the bytes 1 1 2 1 1 0, then the extra bit and seven zeros to fill the byte.
    head = bias.numpy().astype("<f4").tobytes() + bytes([2]) + np.array([-1, 0.5], "<f4").tobytes()
    assert bytes(stream[: len(head)]) == head and bytes(stream[-1:]) == bytes([0b1000_0000])
    assert zlib.decompress(bytes(stream[len(head) : -1]), -15) == bytes([1, 1, 2, 1, 1, 0])
    raw = codec.stream(bias.numpy().astype("<f4").tobytes(), np.array([0.5, 0.5, -1], np.float32), np.array([1, 1, 3]), None)
    assert bytes(raw[: 8 + 1 + 12]) == head[:8] + bytes([0]) + np.array([0.5, 0.5, -1], "<f4").tobytes()  # K = 0: raw
    assert zlib.decompress(bytes(raw[21:-1]), -15) == bytes([1, 1, 2])
    round_trip(stream, w, bias)


def test_extra_bits_round_trip_at_every_width():
    """Values of widths 0 to 25 (beyond a 2^24-weight layer's gaps, 23 at most), packed one after another across byte boundaries,
    read back; one byte too many, or a set padding bit, is refused."""
    rng = np.random.default_rng(0)
    widths = rng.integers(0, 26, size=5000)
    values = rng.integers(0, 1 << 26, size=5000) & ((1 << widths) - 1)
    packed = np.packbits(codec.bits(values, widths))
    assert len(packed) == (int(widths.sum()) + 7) // 8
    assert np.array_equal(codec.read_bits(packed, widths), values)
    expected = "".join(format(int(v), f"0{w}b") if w else "" for v, w in zip(values[:40], widths[:40]))
    assert "".join(map(str, codec.bits(values[:40], widths[:40]))) == expected  # the bits, as Python formats them
    with pytest.raises(ValueError, match="bytes of extra bits"):
        codec.read_bits(np.append(packed, 0).astype(np.uint8), widths)
    if widths.sum() % 8:
        with pytest.raises(ValueError, match="bits after"):
            codec.read_bits(np.append(packed[:-1], packed[-1] | 1).astype(np.uint8), widths)


def test_a_forged_symbol_is_refused():
    """A code past its codebook, or a gap class wider than the layer, is a ValueError (not an IndexError, nor a
    shift past 64 bits); a gap that runs past the layer too."""
    head, book = np.zeros(2, "<f4").tobytes(), np.array([0.5, 1.0], np.float32)
    past = codec.stream(head, book, np.array([1, 2]), np.array([0, 2]))  # code 2 of a 2-value codebook
    with pytest.raises(ValueError, match="a code 2 into a codebook of 2 values"):
        codec.decode(past, 2, 20, 2, torch.float32)
    wide = codec.stream(head, book, np.array([1, 40]), np.array([0, 1]))  # 40: 6 bits; a 20-weight layer's gaps: 5
    with pytest.raises(ValueError, match="a gap of 6 bits in a 20-weight layer"):
        codec.decode(wide, 2, 20, 2, torch.float32)
    beyond = codec.stream(head, book, np.array([12, 10]), np.array([0, 1]))  # positions 12, 23
    with pytest.raises(ValueError, match="a weight at position 23 of a 20-weight layer"):
        codec.decode(beyond, 2, 20, 2, torch.float32)


def test_symbols_inflate_to_their_count_and_no_further():
    """A DEFLATE stream of more symbols than the config says stops at one more (no allocation past it); fewer,
    one that does not end, or bytes that are not DEFLATE are each refused."""
    symbols = np.random.default_rng(0).integers(0, 16, size=10_000).astype(np.uint8)
    data = np.frombuffer(codec.deflated([symbols]) + b"\x80", dtype=np.uint8)
    out, rest = codec.inflated(data, len(symbols))
    assert np.array_equal(out, symbols) and rest.tobytes() == b"\x80"
    for count in (len(symbols) - 1, len(symbols) + 1):
        with pytest.raises(ValueError, match="does not hold exactly"):
            codec.inflated(data, count)
    with pytest.raises(ValueError, match="does not hold exactly"):
        codec.inflated(data[:-20], len(symbols))
    with pytest.raises(ValueError, match="not a DEFLATE stream"):
        codec.inflated(np.full(50, 0xFF, dtype=np.uint8), 10)
    bomb = np.frombuffer(zlib.compress(bytes(10_000_000), 9)[2:-4], dtype=np.uint8)  # 10 MB in ~10 KB
    with pytest.raises(ValueError, match="does not hold exactly"):
        codec.inflated(bomb, 100)


def test_each_part_gets_its_own_code_where_shorter():
    """Two parts of different statistics: a block each (two Huffman codes) is shorter than one block; for a few
    symbols, one block (one code table) is; a long run of one symbol is coded as repeats."""
    rng = np.random.default_rng(1)
    classes, codes = rng.integers(0, 4, size=3000), rng.integers(40, 56, size=3000)
    def one_block(parts):
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_HUFFMAN_ONLY)
        return deflate.compress(np.concatenate(parts).astype(np.uint8).tobytes()) + deflate.flush()
    two = codec.deflated([classes, codes])
    assert len(two) < len(one_block([classes, codes]))
    assert zlib.decompress(two, -15) == np.concatenate([classes, codes]).astype(np.uint8).tobytes()
    few = [np.array([1, 1, 2]), np.array([0, 1, 1])]
    assert codec.deflated(few) == one_block(few)
    assert len(codec.deflated([np.zeros(10_000)])) < 30  # a dense layer's gaps: runs (Huffman alone: 1,250 bytes)


def quantized_mlp(ratio: float, levels: int, seed=0):
    """A one-replica 784-100-10 MLP pruned to `ratio` at random, each layer's non-zero weights rounded to `levels`
    evenly spaced values between its extremes (what a quantization stage leaves: few distinct values)."""
    model, population = population_model({"name": "mlp"}, [ratio], seeds=(seed,))
    prune_(model, lambda r: ratio)
    with torch.no_grad():
        for lin in model.layers:
            w = lin.replica_weight()
            nz = w[w != 0]
            grid = torch.linspace(float(nz.min()), float(nz.max()), levels)
            q = torch.where(w != 0, grid[(w.unsqueeze(-1) - grid).abs().argmin(-1)], w)
            lin.weight.copy_(lin.from_replicas(q))
    return model, population


@pytest.mark.parametrize("values", [torch.float32, torch.float16])
def test_coded_file_runs_the_dense_models_logits(tmp_path, values):
    model, population = quantized_mlp(0.01, 16)
    rec = record(population, 0, "mlp", "magl1")
    coded = export(tmp_path / "c.safetensors", model, 0, rec, MEAN_STD, values=values)
    plain = export(tmp_path / "p.safetensors", model, 0, rec, MEAN_STD, values=values, coded=False)
    assert file.read(tmp_path / "c.safetensors")[1]["format"] == "coded-mlp" and coded < 0.6 * plain
    loaded, csr = artefact.load(tmp_path / "c.safetensors"), artefact.load(tmp_path / "p.safetensors")
    assert type(loaded) is type(csr) is SparseMLP
    (w0, b0), (w1, b1) = ((lin.replica_weight()[0].to(values).double(), lin.replica_bias()[0].double()) for lin in model.layers)
    for batch in (1, 1000):  # both kernels: small batches dense, large ones CSR
        x = torch.rand(batch, 784)
        expected = torch.relu((x.double() - MEAN_STD[0]) / MEAN_STD[1] @ w0 + b0) @ w1 + b1
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected.float(), rtol=1e-5, atol=1e-5)
            assert torch.equal(loaded(x), csr(x))  # the same weights in the same module: the same bits


def test_export_writes_the_smallest_candidate(tmp_path):
    """Quantized or not, pruned or dense, MLP or HashedNet: the file export writes is the smaller of the plain
    format and the coded one, each written out here."""
    hashed, hpop = population_model({"name": "hashednet", "hash_seed": 3, "shared_hash": False}, [0.1], seeds=(0,))
    with torch.no_grad():  # zero buckets and few values: what pruning and quantizing a HashedNet leave
        hashed.layers[0].buckets.copy_(torch.where(torch.rand(hashed.layers[0].buckets.shape) < 0.5, 0.0, 0.25))
    population = Population.grid([0], [0.2])
    deep = PopulationMLP(population.streams, population.per_stream, [784, 30, 20, 10], "relu")  # two hidden layers
    deep.init_([torch.Generator().manual_seed(1)], "kaiming")
    prune_(deep, lambda r: 0.2)
    cases = {"quantized": (*quantized_mlp(0.05, 4), "mlp", "magl1"), "deep": (deep, population, "mlp", "magl1"),
             "pruned": (*population_model({"name": "mlp"}, [0.3], seeds=(0,)), "mlp", "magl1"),
             "dense": (*population_model({"name": "mlp"}, [1.0], seeds=(0,)), "mlp", "none"),
             "hashed": (hashed, hpop, "hashednet", "none")}  # fmt: skip
    prune_(cases["pruned"][0], lambda r: 0.3)
    chosen = {}
    for name, (model, population, family, method) in cases.items():
        rec = record(population, 0, family, method)
        size = export(tmp_path / f"{name}.safetensors", model, 0, rec, MEAN_STD)
        plain = export(tmp_path / f"{name}-plain.safetensors", model, 0, rec, MEAN_STD, coded=False)
        tensors, config = file.read(tmp_path / f"{name}-plain.safetensors")
        other = file.write(tmp_path / f"{name}-coded.safetensors", *formats.coded(tensors, config), packed=True)
        assert size == min(plain, other) == (tmp_path / f"{name}.safetensors").stat().st_size, name
        chosen[name] = file.read(tmp_path / f"{name}.safetensors")[1]["format"]
        x = torch.rand(40, 784)
        with torch.no_grad():  # whichever is written, the same function
            assert torch.equal(artefact.load(tmp_path / f"{name}.safetensors")(x), artefact.load(tmp_path / f"{name}-plain.safetensors")(x))
    assert chosen["quantized"] == chosen["pruned"] == chosen["deep"] == "coded-mlp" and chosen["hashed"] == "coded-hashed-mlp"


def damaged_coded(tmp_path) -> dict:
    """name -> (a damaged coded file, what its error says)."""
    model, population = quantized_mlp(0.05, 16)
    good = tmp_path / "good.safetensors"
    export(good, model, 0, record(population, 0, "mlp", "magl1"), MEAN_STD)
    data, stream = good.read_bytes(), load_file(good)["coded"]
    config = file.read(good)[1]
    assert config["format"] == "coded-mlp" and config["standardized"]
    (first, second), head = config["streams"], 8  # the stream: mean and std, layer 0's stream, layer 1's
    out = {"flipped": (tmp_path / "flipped.safetensors", "checksum mismatch"),
           "truncated": (tmp_path / "truncated.safetensors", "truncated or foreign"),
           "forged stream": (tmp_path / "forged.safetensors", "layer 0's coded stream is damaged"),
           "forged codes": (tmp_path / "codes.safetensors", "layer 0's coded stream is damaged"),
           "forged length": (tmp_path / "short.safetensors", "layer 0's coded stream is damaged"),
           "forged lengths": (tmp_path / "lengths.safetensors", f"its coded stream is {len(stream)} bytes, its config says"),
           "forged count": (tmp_path / "count.safetensors", "layer 1's coded stream is damaged"),
           "forged standardization": (tmp_path / "nan.safetensors", "input standardization is not finite"),
           "forged value type": (tmp_path / "type.safetensors", "values must be one of float32, float16"),
           "packed entry not base85": (tmp_path / "b85.safetensors", "metadata is not a packed entry"),
           "packed entry too large": (tmp_path / "bomb.safetensors", "does not unpack to at most")}  # fmt: skip
    flipped = bytearray(data)
    flipped[len(data) - second - 10] ^= 0x40  # inside layer 0's stream (the file's last bytes are the stream's)
    out["flipped"][0].write_bytes(bytes(flipped))
    out["truncated"][0].write_bytes(data[:-7])
    bad = stream.clone()
    bad[head + 400] = 0xFF  # the codebook's size, right after layer 0's bias: 255 values for a layer
    forge(out["forged stream"][0], {"coded": bad}, config)
    codes = stream.clone()
    assert int(stream[head + 400]) == 16
    at = head + 400 + 1 + 16 * 4 + 20  # inside layer 0's DEFLATE stream (after its bias, K = 16 and its codebook)
    codes[at : at + 8] = torch.tensor([0xAA, 0x55] * 4, dtype=torch.uint8)
    forge(out["forged codes"][0], {"coded": codes}, config)
    short = torch.cat([stream[: head + first - 20], stream[head + first :]])
    forge(out["forged length"][0], {"coded": short}, {**config, "streams": [first - 20, second]})
    forge(out["forged lengths"][0], {"coded": stream}, {**config, "streams": [first + 1, second]})
    forge(out["forged count"][0], {"coded": stream}, {**config, "nonzero": [config["nonzero"][0], config["nonzero"][1] + 1]})
    nan = stream.clone()
    nan[:4] = torch.from_numpy(np.array([np.nan], "<f4").view(np.uint8))
    forge(out["forged standardization"][0], {"coded": nan}, config)
    forge(out["forged value type"][0], {"coded": stream}, {**config, "values": "int8"})
    save_file({"coded": stream}, str(out["packed entry not base85"][0]), metadata={file.PACKED: "{not: base85}"})
    bomb = file.pack(" " * (file.MAX_ENTRY + 1))  # a few KB that would unpack past the limit
    save_file({"coded": stream}, str(out["packed entry too large"][0]), metadata={file.PACKED: bomb})
    return out


def test_a_damaged_coded_file_is_one_line(tmp_path):
    files = damaged_coded(tmp_path)
    for name, (path, message) in files.items():
        with pytest.raises(UserError, match=message) as err:
            artefact.load(path)
        assert "\n" not in str(err.value), name
    path, message = files["forged stream"]  # (the command's other errors: test_artefact)
    proc = run_python("-m", "nncompress.artefact", path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]

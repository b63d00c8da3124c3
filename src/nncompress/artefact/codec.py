"""One layer as one byte stream: its bias, where its weights' (or HashedNet buckets') non-zero values are, as gaps,
and what they are, as codes into a codebook of its distinct values when it has few (a quantized layer) or raw.

The matrix is read flat, row-major. Its stream, in order:
- the bias, float32 little-endian (as the plain formats store it; in the stream, it costs no tensor entry in the
  file's header);
- K, the codebook's size, as one unsigned LEB128 integer (0: no codebook);
- the codebook (its K distinct non-zero values, ascending) or, without one, the non-zero values in order, each in
  the file's value type (float32 or float16, little-endian): exactly the values, so decoding is bit-exact;
- one raw DEFLATE stream (RFC 1951) of each gap's class, one byte each, then, with a codebook, each value's code,
  one byte each (`deflated`);
- each gap's extra bits, most significant first, zero-padded to a byte.
A gap is the number of zeros before a non-zero weight since the previous one (the first: since the start). Its
class is its bit length (0 for a gap of 0), its extra bits the bits below the leading one, as DEFLATE codes its
distances, so that the Huffman alphabet stays small (at most 25 classes) whatever the matrix's size.

Why DEFLATE, from the standard library's zlib, with Huffman coding only (or runs coded as repeats, Z_RLE, where
shorter: a dense layer's gaps are all 0): these symbols are independent draws, so an entropy coder is all they
need (zlib's full search for repeats made them 10-25 % longer), and zlib's is within 0-11 bytes a part of the
canonical Huffman code with a nibble-per-symbol table written here before (e.g. 243 against 232 bytes for a
331-weight layer's classes and 4-bit codes), while its C decoder inflates a 7,376-weight layer's symbols in
0.03-0.07 ms, where that code's vectorized numpy took about 3 ms: a coded file loads as fast as a CSR one. (The
bytes zlib writes may differ between zlib builds, e.g. zlib-ng; what they decode to does not.) Deep Compression (Han et al. 2016) Huffman-codes its
weights and index gaps too.

The number of non-zero weights is in the file's config, so the stream does not hold it. Decoding checks every
count, length and symbol against what the config allows, and inflates no more than those counts, so a forged
stream is a ValueError, never a huge allocation or a wrong matrix.
"""
import itertools
import zlib

import numpy as np
import torch

MAX_CODEBOOK = 256  # B <= 8 bits a code before entropy coding, as the quantization stage leaves them: one byte each


def encode(weights: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """The stream (uint8) of a layer: its flat float32 or float16 weights, with a codebook where their non-zero
    values are few enough that it is shorter, raw otherwise, and its float32 bias."""
    head = bias.detach().cpu().numpy().astype("<f4").tobytes()
    flat = weights.detach().cpu().contiguous().view(-1)
    positions = torch.nonzero(flat).view(-1).numpy()
    values = flat[positions].numpy()
    gaps = np.diff(positions, prepend=-1) - 1
    raw = stream(head, values, gaps, None)
    codebook, codes = np.unique(values, return_inverse=True)  # (equal values are one entry: -0.0 is never non-zero)
    if not 0 < len(codebook) <= MAX_CODEBOOK:
        return raw
    coded = stream(head, codebook, gaps, codes)
    return coded if len(coded) < len(raw) else raw


def stream(bias: bytes, stored: np.ndarray, gaps: np.ndarray, codes: np.ndarray | None) -> np.ndarray:
    """The stream of `stored` values (the codebook when there are `codes` into it, else the non-zero values)."""
    classes = bit_length(gaps)
    extra = np.maximum(classes - 1, 0)
    symbols = [classes] if codes is None else [classes, codes]
    little_endian = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    head = [bias, leb128(0 if codes is None else len(stored)), little_endian, deflated(symbols)]
    body = np.packbits(bits(gaps - np.where(classes > 0, 1 << extra, 0), extra))
    return np.concatenate([np.frombuffer(b"".join(head), dtype=np.uint8), body])


def deflated(parts: list[np.ndarray]) -> bytes:
    """The parts' symbols (each < 256), one byte each, as one raw DEFLATE stream: the shortest of Huffman coding
    alone and with runs of a symbol coded as repeats (a dense layer's gaps are all 0), each with a block per part
    (its own code) or one block (for a few symbols, where a code table costs more than it saves)."""
    candidates = []
    for strategy, flush in itertools.product((zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE), (zlib.Z_BLOCK, zlib.Z_NO_FLUSH)):
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, strategy)
        out = [deflate.compress(part.astype(np.uint8).tobytes()) + deflate.flush(flush) for part in parts[:-1]]
        candidates.append(b"".join(out) + deflate.compress(parts[-1].astype(np.uint8).tobytes()) + deflate.flush())
    return min(candidates, key=len)


def decode(data: np.ndarray, outputs: int, size: int, nonzero: int, dtype: torch.dtype) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """(positions, values, bias) of the stream of a layer of `outputs` units whose `size`-long flat weights in
    `dtype` hold `nonzero` non-zero values: positions ascending, int64. ValueError (one line) unless the stream
    decodes to exactly that (DEFLATE's own padding bits are not checked)."""
    reader = Reader(np.asarray(data, dtype=np.uint8))
    bias = torch.from_numpy(np.frombuffer(reader.take(4 * outputs), dtype="<f4").astype(np.float32))
    k = reader.leb128()
    if k > min(MAX_CODEBOOK, nonzero):
        raise ValueError(f"a codebook of {k} values for {nonzero} weights")
    np_type = np.dtype(torch.empty(0, dtype=dtype).numpy().dtype).newbyteorder("<")
    stored = np.frombuffer(reader.take((k if k else nonzero) * np_type.itemsize), dtype=np_type)
    symbols, rest = inflated(reader.rest(), nonzero * (2 if k else 1))
    classes = symbols[:nonzero].astype(np.int64)
    if nonzero and classes.max() > bit_length(size - 1):
        raise ValueError(f"a gap of {classes.max()} bits in a {size}-weight layer")
    extra_widths = np.maximum(classes - 1, 0)
    gaps = np.where(classes > 0, (1 << extra_widths) + read_bits(rest, extra_widths), 0)
    positions = np.cumsum(gaps + 1) - 1
    if len(positions) and positions[-1] >= size:
        raise ValueError(f"a weight at position {positions[-1]} of a {size}-weight layer")
    if k:
        codes = symbols[nonzero:]
        if codes.max() >= k:
            raise ValueError(f"a code {codes.max()} into a codebook of {k} values")
        values = stored[codes]
    else:
        values = stored
    return positions, torch.from_numpy(values.astype(np_type.newbyteorder("="))), bias


def inflated(data: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The `count` symbols of the DEFLATE stream at the start of `data`, and the bytes after it; ValueError unless
    the stream ends right after them (it is inflated no further: a forged one cannot make it allocate more)."""
    inflate = zlib.decompressobj(-15)
    try:
        out = inflate.decompress(data.tobytes(), count + 1)  # (a limit of 0 would mean none)
    except zlib.error as e:
        raise ValueError(f"its symbols are not a DEFLATE stream ({e})") from None
    if len(out) != count or not inflate.eof:
        raise ValueError(f"its symbols' stream does not hold exactly its {count} symbols")
    return np.frombuffer(out, dtype=np.uint8), np.frombuffer(inflate.unused_data, dtype=np.uint8)


def read_bits(data: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Unsigned integers of the given widths (each at most 25 bits) read one after another, most significant bit
    first, from `data`, which must hold exactly them and zero bits up to its last byte; ValueError otherwise."""
    ends = np.cumsum(widths)
    total = int(ends[-1]) if len(ends) else 0
    if len(data) != (total + 7) // 8:
        raise ValueError(f"{len(data)} bytes of extra bits, {(total + 7) // 8} expected")
    if total % 8 and int(data[-1]) & ((1 << (8 - total % 8)) - 1):
        raise ValueError("bits after its last extra bits")
    starts = ends - widths
    padded = np.concatenate([data, np.zeros(4, dtype=np.uint8)]).astype(np.int64)
    at = starts >> 3  # each value lies in the 4 bytes from the one its first bit is in (7 + 25 bits at most)
    window = padded[at] << 24 | padded[at + 1] << 16 | padded[at + 2] << 8 | padded[at + 3]
    return (window >> (32 - (starts & 7) - widths)) & ((1 << widths) - 1)


def bits(values: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """The bits (uint8 0/1, most significant first) of each value in its width, concatenated."""
    values, widths = np.asarray(values, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    top = int(widths.max()) if len(widths) else 0
    if top == 0:
        return np.zeros(0, dtype=np.uint8)
    shifts = widths[:, None] - 1 - np.arange(top)  # (n, top): bit j of a value sits at width - 1 - j
    out = (values[:, None] >> np.maximum(shifts, 0)) & 1
    return out[shifts >= 0].astype(np.uint8)


class Reader:
    """The stream's byte fields, in order; ValueError when one runs past its end."""

    def __init__(self, data: np.ndarray):
        self.data, self.at = data, 0

    def take(self, n: int) -> np.ndarray:
        if self.at + n > len(self.data):
            raise ValueError("the stream ends inside its header")
        self.at += n
        return self.data[self.at - n : self.at]

    def leb128(self) -> int:
        value, shift = 0, 0
        while True:
            byte = int(self.take(1)[0])
            value |= (byte & 0x7F) << shift
            if byte < 0x80 or shift > 56:
                return value
            shift += 7

    def rest(self) -> np.ndarray:
        return self.data[self.at :]


def bit_length(values: np.ndarray) -> np.ndarray:
    """The bit length of each non-negative integer (0 for 0)."""
    return np.frexp(np.asarray(values, dtype=np.float64))[1].astype(np.int64)  # exact below 2^53: v = m 2^e, m in [0.5, 1)


def leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)

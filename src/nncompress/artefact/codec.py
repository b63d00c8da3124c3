"""One layer as one byte stream: its bias, where its weights' (or HashedNet buckets') non-zero values are, as gaps,
and what they are, as codes into a codebook of its distinct values when it has few (a quantized layer) or raw.

The matrix is read flat, row-major. Its stream, in order:
- the bias, float32 little-endian (as the plain formats store it; in the stream, it costs no tensor entry in the
  file's header);
- K, the codebook's size, as one unsigned LEB128 integer (0: no codebook);
- the codebook (its K distinct non-zero values, ascending) or, without one, the non-zero values in order, each in
  the file's value type (float32 or float16, little-endian): exactly the values, so decoding is bit-exact;
- the gaps' code: one byte A, then A code lengths, two per byte (4 bits each);
- with a codebook, the codes' code: K code lengths, two per byte;
- then bits, most significant first, zero-padded to a byte: each gap's class, Huffman-coded; each gap's extra bits;
  each value's code, Huffman-coded.
A gap is the number of zeros before a non-zero weight since the previous one (the first: since the start). Its
class is its bit length (0 for a gap of 0), its extra bits the bits below the leading one, as DEFLATE codes its
distances, so that the Huffman alphabet stays small (at most 26 classes) whatever the matrix's size.

The number of non-zero weights is in the file's config, so the stream does not hold it. Decoding checks every
count, length and table against what the config allows, so a forged stream is a ValueError, never a huge
allocation or a wrong matrix.
"""
import numpy as np
import torch

from . import huffman

MAX_CODEBOOK = 256  # B <= 8 bits a code before entropy coding, as the quantization stage leaves them


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
    gap_lengths = huffman.code_lengths(np.bincount(classes)) if len(gaps) else np.zeros(0, np.uint8)
    little_endian = stored.astype(stored.dtype.newbyteorder("<")).tobytes()
    head = [bias, leb128(0 if codes is None else len(stored)), little_endian, bytes([len(gap_lengths)]), nibbles(gap_lengths)]
    extra = np.maximum(classes - 1, 0)
    parts = [huffman.encode(classes, gap_lengths), huffman.bits(gaps - np.where(classes > 0, 1 << extra, 0), extra)]
    if codes is not None:
        code_lengths = huffman.code_lengths(np.bincount(codes, minlength=len(stored)))
        head.append(nibbles(code_lengths))
        parts.append(huffman.encode(codes, code_lengths))
    body = np.packbits(np.concatenate([np.zeros(0, np.uint8), *parts]))
    return np.concatenate([np.frombuffer(b"".join(head), dtype=np.uint8), body])


def decode(data: np.ndarray, outputs: int, size: int, nonzero: int, dtype: torch.dtype) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """(positions, values, bias) of the stream of a layer of `outputs` units whose `size`-long flat weights in
    `dtype` hold `nonzero` non-zero values: positions ascending, int64. ValueError (one line) unless the stream is
    exactly that."""
    reader = Reader(np.asarray(data, dtype=np.uint8))
    bias = torch.from_numpy(np.frombuffer(reader.take(4 * outputs), dtype="<f4").astype(np.float32))
    k = reader.leb128()
    if k > min(MAX_CODEBOOK, nonzero):
        raise ValueError(f"a codebook of {k} values for {nonzero} weights")
    np_type = np.dtype(torch.empty(0, dtype=dtype).numpy().dtype).newbyteorder("<")
    stored = np.frombuffer(reader.take((k if k else nonzero) * np_type.itemsize), dtype=np_type)
    alphabet = int(reader.take(1)[0])
    if alphabet > int(bit_length(size)) + 1:
        raise ValueError(f"gap classes up to {alphabet - 1} bits in a {size}-weight layer")
    gap_lengths = reader.lengths(alphabet)
    if nonzero and not huffman.is_complete(gap_lengths):
        raise ValueError("its gaps' code is not a prefix code")
    code_lengths = reader.lengths(k) if k else None
    if k and not huffman.is_complete(code_lengths):
        raise ValueError("its values' code is not a prefix code")
    bits = np.unpackbits(reader.rest())
    classes, at = huffman.decode(bits, 0, nonzero, gap_lengths) if nonzero else (np.zeros(0, np.int64), 0)
    extra_widths = np.maximum(classes - 1, 0)
    extra, at = huffman.read_bits(bits, at, extra_widths)
    gaps = np.where(classes > 0, (1 << extra_widths) + extra, 0)
    positions = np.cumsum(gaps + 1) - 1
    if len(positions) and positions[-1] >= size:
        raise ValueError(f"a weight at position {positions[-1]} of a {size}-weight layer")
    if k:
        codes, at = huffman.decode(bits, at, nonzero, code_lengths)
        values = stored[codes]
    else:
        values = stored
    if len(bits) - at >= 8 or bits[at:].any():
        raise ValueError("bytes after its last code")
    return positions, torch.from_numpy(values.astype(np_type.newbyteorder("="))), bias


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

    def lengths(self, n: int) -> np.ndarray:
        packed = self.take((n + 1) // 2)
        return np.stack([packed >> 4, packed & 0x0F], 1).reshape(-1)[:n]

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


def nibbles(lengths: np.ndarray) -> bytes:
    """Code lengths (each < 16), two per byte, the first in the high nibble."""
    padded = np.concatenate([np.asarray(lengths, dtype=np.uint8), np.zeros(len(lengths) % 2, np.uint8)])
    return (padded[0::2] << 4 | padded[1::2]).astype(np.uint8).tobytes()

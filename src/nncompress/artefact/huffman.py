"""Canonical Huffman codes over small alphabets, written by hand: the entropy coder of `codec`.

Why by hand: the streams it codes are a few hundred bytes, where a general-purpose compressor's framing and its
search for repeats cost as much as they save, and a canonical code needs only its code lengths (one nibble per
symbol: lengths are limited to 15 bits). Measured on a trained 784-100-10 replica pruned to 1 % and quantized to
4 bits, its first layer's 433 codes (217 bytes packed two per byte): this code 154 bytes with its table, zlib -9
187 (raw deflate 181), lzma 272 (raw lzma2 216); its gaps: 411 bytes here, 579 with zlib over uint16 gaps.
zstandard, brotli and constriction are not installed. Deep Compression (Han et al. 2016) Huffman-codes its
weights and index gaps too.

A code is its lengths (0: an unused symbol). An alphabet with one used symbol costs no bits at all: its length
is stored as 1, and neither side writes or reads a bit for it.
"""
import heapq

import numpy as np

LIMIT = 15  # longest code, bits: a length fits a nibble, and the decoding table has at most 2^15 entries
BLOCK = 1 << 14  # bits decoded at a time: its arrays stay small enough for the allocator to reuse (no page faults)


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """Huffman code lengths (uint8) for symbols seen `counts` times, none longer than LIMIT. Ties break by symbol,
    so the same counts give the same code (two exports of a replica are the same bytes)."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(len(counts), dtype=np.uint8)
    used = np.flatnonzero(counts)
    if len(used) > 1 << LIMIT:
        raise ValueError(f"{len(used)} symbols cannot have codes of at most {LIMIT} bits")
    if len(used) == 1:
        lengths[used] = 1
        return lengths
    weights = counts[used]
    while True:
        depth = tree_depths(weights)
        if depth.max() <= LIMIT:
            lengths[used] = depth
            return lengths
        weights = np.maximum(weights >> 1, 1)  # flatter counts, shallower tree: the usual length limiting


def tree_depths(weights: np.ndarray) -> np.ndarray:
    """Each leaf's depth in a Huffman tree over `weights` (two or more)."""
    heap = [(int(w), i, (i,)) for i, w in enumerate(weights)]  # (weight, tie-break, leaves below)
    heapq.heapify(heap)
    depth = np.zeros(len(weights), dtype=np.int64)
    tie = len(weights)
    while len(heap) > 1:
        (wa, _, a), (wb, _, b) = heapq.heappop(heap), heapq.heappop(heap)
        depth[list(a + b)] += 1
        heapq.heappush(heap, (wa + wb, tie, a + b))
        tie += 1
    return depth


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
    """The canonical code of each symbol (int64): by (length, symbol), each code the previous one plus one,
    shifted left as lengths grow (as DEFLATE assigns them)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = np.zeros(len(lengths), dtype=np.int64)
    code, previous = 0, 0
    for symbol in by_length(lengths).tolist():
        code <<= int(lengths[symbol]) - previous
        codes[symbol], previous = code, int(lengths[symbol])
        code += 1
    return codes


def by_length(lengths: np.ndarray) -> np.ndarray:
    """The used symbols in canonical order: by length, then symbol."""
    used = np.flatnonzero(lengths)
    return used[np.lexsort((used, np.asarray(lengths)[used]))]


def is_complete(lengths: np.ndarray) -> bool:
    """Whether these lengths are a full prefix code (Kraft sum 1), or a lone symbol: what `code_lengths` gives,
    and what decoding a foreign file must check before trusting its table."""
    used = np.asarray(lengths, dtype=np.int64)
    used = used[used > 0]
    if len(used) == 1:
        return int(used[0]) == 1
    return len(used) > 0 and int(used.max()) <= LIMIT and sum(1 << (LIMIT - int(n)) for n in used) == 1 << LIMIT


def bits(values: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """The bits (uint8 0/1, most significant first) of each value in its width, concatenated."""
    values, widths = np.asarray(values, dtype=np.int64), np.asarray(widths, dtype=np.int64)
    top = int(widths.max()) if len(widths) else 0
    if top == 0:
        return np.zeros(0, dtype=np.uint8)
    shifts = widths[:, None] - 1 - np.arange(top)  # (n, top): bit j of a value sits at width - 1 - j
    out = (values[:, None] >> np.maximum(shifts, 0)) & 1
    return out[shifts >= 0].astype(np.uint8)


def encode(symbols: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The bits of `symbols` under the code `lengths` (a lone symbol: none)."""
    if np.count_nonzero(lengths) == 1:
        return np.zeros(0, dtype=np.uint8)
    symbols = np.asarray(symbols, dtype=np.int64)
    return bits(canonical_codes(lengths)[symbols], np.asarray(lengths, dtype=np.int64)[symbols])


def decode(stream: np.ndarray, start: int, count: int, lengths: np.ndarray) -> tuple[np.ndarray, int]:
    """`count` symbols from the bits `stream` (uint8 0/1) at `start`, and the position after them; ValueError if
    the stream ends first. `lengths` must be `is_complete`."""
    used = np.flatnonzero(lengths)
    if len(used) == 1:
        return np.full(count, used[0], dtype=np.int64), start
    lengths = np.asarray(lengths, dtype=np.int64)
    top, order = int(lengths.max()), by_length(lengths)
    span = 1 << (top - lengths[order])  # the entries of the (symbol, length) table each code covers
    table = np.repeat(order, span), np.repeat(lengths[order], span)
    symbols, p = [], start
    while count:  # a block of bits at a time: memory stays bounded whatever the stream's size
        block, p = decode_block(stream, p, count, top, table)
        symbols.append(block)
        count -= len(block)
    return np.concatenate(symbols) if symbols else np.zeros(0, dtype=np.int64), p


def decode_block(stream: np.ndarray, start: int, count: int, top: int, table) -> tuple[np.ndarray, int]:
    """Up to `count` symbols of the codes starting in the BLOCK bits from `start` (at least one), and the position
    after the last."""
    n = min(BLOCK, len(stream) - start, count * top)  # (the codes cannot span more)
    if n <= 0:
        raise ValueError("the stream ends before its last symbol")
    # Every `top`-bit window of the block, read as an integer, indexes the table.
    window = np.concatenate([stream[start : start + n + top], np.zeros(top, dtype=np.uint8)]).astype(np.int64)
    value = np.zeros(n, dtype=np.int64)
    for j in range(top):
        value = (value << 1) | window[j : j + n]
    symbol_at, length_at = table[0][value], table[1][value]
    # Each code's length says where the next starts: p_0 = 0, p_i+1 = p_i + length(p_i), computed by doubling
    # (jump[k] leaps 2^k codes from every position; n: past the block, and stays there), not a step per symbol.
    jump = [np.minimum(np.arange(n + 1, dtype=np.int32) + np.append(length_at, 0).astype(np.int32), n)]
    while 1 << len(jump) < min(count, n):
        jump.append(jump[-1][jump[-1]])
    positions = np.zeros(1, dtype=np.int32)
    for leap in reversed(jump):
        positions = np.concatenate([positions, leap[positions]])
    positions = np.sort(positions)  # the walk only moves forward: each position once, but n
    positions = positions[positions < n][:count]
    after = start + int(positions[-1] + length_at[positions[-1]])
    if after > len(stream):
        raise ValueError("the stream ends inside its last symbol")
    return symbol_at[positions], after


def read_bits(stream: np.ndarray, start: int, widths: np.ndarray) -> tuple[np.ndarray, int]:
    """Unsigned integers of the given widths read one after another from `start`, and the position after them."""
    widths = np.asarray(widths, dtype=np.int64)
    end = start + int(widths.sum())
    if end > len(stream):
        raise ValueError("the stream ends before its last raw bits")
    offsets = start + np.cumsum(widths) - widths  # where each value's bits start
    values = np.zeros(len(widths), dtype=np.int64)
    for j in range(int(widths.max()) if len(widths) else 0):  # bit j of every value at least j + 1 bits wide
        wide = np.flatnonzero(widths > j)
        values[wide] = values[wide] << 1 | stream[offsets[wide] + j]
    return values, end

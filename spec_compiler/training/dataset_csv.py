"""CSV files read lazily: one pass finds where each row starts and reads its label (and checks
that every row has the first row's width); a row's values are parsed only when it is read. A
quoted field may span lines. A gzipped file is decompressed into memory first (it cannot be
read at an offset)."""

from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .dataset_files import Column, data_error

LABEL_COLUMNS = ("label", "labels", "target", "class", "y")


def parse_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


class _Lines:
    """Decoded lines of a binary file for csv.reader, counting bytes and lines as it goes."""

    def __init__(self, handle):
        self.handle, self.position, self.line = handle, 0, 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.handle.readline()
        if not line:
            raise StopIteration
        self.position += len(line)
        self.line += 1
        return line.decode("utf-8")


@dataclass(frozen=True)
class CsvLayout:
    """How the file is laid out, read from its first rows."""

    delimiter: str
    header: list[str] | None
    width: int
    label_column: int
    input_columns: list[int]


class CsvRows(Column):
    """The input columns of every row: float32 (N, F), or one text column as a list of str."""

    def __init__(self, source: str, path: str, blob: bytes | None, layout: CsvLayout, bounds: np.ndarray,
                 lines: np.ndarray, text_column: int | None):
        self.source, self.path, self.blob, self.layout = source, path, blob, layout
        self.bounds, self.lines, self.text_column = bounds, lines, text_column
        self.shape = (len(bounds),) if text_column is not None else (len(bounds), len(layout.input_columns))
        self.dtype = np.dtype(object if text_column is not None else np.float32)

    @property
    def nbytes(self) -> int:
        return int(self.bounds[-1, 1] - self.bounds[0, 0]) if len(self.bounds) else 0

    def _bytes(self, start: int, end: int) -> bytes:
        if self.blob is not None:
            return self.blob[start:end]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, end - start, start)
        finally:
            os.close(fd)

    def _records(self, rows: np.ndarray) -> list[list[str]]:
        """The parsed fields of each row; one read per run of consecutive rows."""
        records: list[list[str] | None] = [None] * len(rows)
        breaks = np.flatnonzero(np.diff(rows) != 1) + 1
        for first, last in zip(np.concatenate(([0], breaks)), np.concatenate((breaks, [len(rows)]))):
            base = int(self.bounds[rows[first], 0])
            chunk = self._bytes(base, int(self.bounds[rows[last - 1], 1]))
            for position in range(first, last):
                start, end = (int(v) - base for v in self.bounds[rows[position]])
                text = chunk[start:end].decode("utf-8")
                records[position] = next(csv.reader(io.StringIO(text), delimiter=self.layout.delimiter))
        return records

    def read(self, rows: np.ndarray):
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        records = self._records(rows)
        if self.text_column is not None:
            return [record[self.text_column] for record in records]
        columns = self.layout.input_columns
        values = np.empty((len(rows), len(columns)), dtype=np.float32)
        for r, record in enumerate(records):
            for c, column in enumerate(columns):
                value = parse_number(record[column])
                if value is None:
                    raise data_error(self.source, f"line {int(self.lines[rows[r]])}, column {column + 1}: "
                                                  f"`{record[column]}` is not a number",
                                     "a numeric CSV holds numbers in every column but the label")
                values[r, c] = value
        return values

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if self.text_column is not None:
            raise TypeError("a text column reads as a list of str: use read()")
        return super().__array__(dtype, copy)


def _delimiter(path: Path, sample: str) -> str:
    if path.name.lower().endswith(".tsv"):
        return "\t"
    return ";" if sample.count(";") > sample.count(",") and "\n" in sample else ","


def _layout(first: list[str], delimiter: str, text_input: bool) -> CsvLayout:
    width = len(first)
    lowered = [c.strip().lower() for c in first]
    header = None
    if any(name in LABEL_COLUMNS for name in lowered) or (
            not text_input and any(parse_number(c) is None for c in first[:-1])) or (
            text_input and "text" in lowered):
        header = lowered
    label = width - 1
    if header:
        label = next((header.index(name) for name in LABEL_COLUMNS if name in header), label)
    return CsvLayout(delimiter, header, width, label, [i for i in range(width) if i != label])


def index_csv(path: Path, text_input: bool) -> tuple[CsvRows, list[str], CsvLayout]:
    """One pass over the file: the rows (read lazily), every row's label text, the layout."""
    source = str(path)
    gz = path.name.lower().endswith(".gz")
    try:
        with (gzip.open if gz else open)(path, "rb") as handle:
            blob = handle.read() if gz else None
        with (io.BytesIO(blob) if gz else open(path, "rb")) as handle:
            delimiter = _delimiter(path, handle.read(65536).decode("utf-8", errors="replace"))
            handle.seek(0)
            lines = _Lines(handle)
            reader = csv.reader(lines, delimiter=delimiter)
            layout, bounds, numbers, labels = None, [], [], []
            start, line = 0, 1
            for row in reader:
                if row and any(c.strip() for c in row):
                    if layout is None:
                        layout = _layout(row, delimiter, text_input)
                        if layout.header is not None:
                            start, line = lines.position, lines.line + 1
                            continue
                    if len(row) != layout.width:
                        raise data_error(source, f"line {line} has {len(row)} columns, the first row has {layout.width}")
                    bounds.append((start, lines.position))
                    numbers.append(line)
                    labels.append(row[layout.label_column].strip())
                start, line = lines.position, lines.line + 1
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise data_error(source, f"cannot read the CSV file: {error}") from None
    if layout is None:
        raise data_error(source, "no samples (the file is empty)")
    if not bounds:
        raise data_error(source, "no samples (only a header row)")
    if not layout.input_columns:
        raise data_error(source, "needs at least one input column besides the label")
    text_column = None
    if text_input:
        text_column = layout.input_columns[0]
        if len(layout.input_columns) > 1:
            if layout.header and "text" in layout.header:
                text_column = layout.header.index("text")
            else:
                raise data_error(source, f"a token input takes one text column and a label; found {layout.width} "
                                         "columns", "name the columns `text` and `label`")
    rows = CsvRows(source, source, blob, layout, np.asarray(bounds, dtype=np.int64).reshape(-1, 2),
                   np.asarray(numbers, dtype=np.int64), text_column)
    return rows, labels, layout

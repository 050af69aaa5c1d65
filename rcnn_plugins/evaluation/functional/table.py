"""A plain-text table formatter for evaluation summaries (no extra dependency)."""
from typing import List, Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows under headers as an ASCII grid with left-aligned, padded columns."""
    cells: List[List[str]] = [[str(h) for h in headers]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    rule = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def line(row: List[str]) -> str:
        return '| ' + ' | '.join(v.ljust(w) for v, w in zip(row, widths)) + ' |'

    out = [rule, line(cells[0]), rule] + [line(row) for row in cells[1:]] + [rule]
    return '\n'.join(out)

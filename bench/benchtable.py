"""The tables the benchmarks print: markdown for bench/README.md (--markdown) or aligned columns for a terminal."""


def print_table(header, rows, markdown, widths=(62, 28, 9, 6)):
    """header: the column titles; rows: tuples of cells (str); widths: the terminal columns' widths."""
    print()
    if markdown:
        print("| %s |\n|%s" % (" | ".join(header), "---|" * len(header)))
        for row in rows:
            print("| %s |" % " | ".join(str(cell) for cell in row))
    else:
        for row in rows:
            print("  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())

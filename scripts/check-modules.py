#!/usr/bin/env python3
"""Checks the layering of src/: no cycle among the top-level modules, only main.rs and the
command line (src/cli/) use `crate::runtime`/`sluice::runtime`, and no file or function is over
its size limit.

Test modules (`#[cfg(test)] mod tests { ... }` at the end of a file) are left out: tests may
reach across layers to build what they check.
"""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
MAX_FILE_LINES = 500
MAX_FN_LINES = 100


def without_tests(text: str) -> str:
    """The file up to its `#[cfg(test)]` test module."""
    match = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    return text[: match.start()] if match else text


def module_of(path: pathlib.Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".rs")


def function_lengths(text: str):
    """(name, first line, length) of every fn, by brace matching from its signature."""
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = re.match(r"\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(async\s+)?fn\s+(\w+)", line)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            # Strings and comments with braces are rare enough in this tree to ignore.
            code = lines[j].split("//")[0]
            depth += code.count("{") - code.count("}")
            if "{" in code:
                started = True
            if started and depth <= 0:
                yield m.group(5), i + 1, j - i + 1
                break
            if not started and code.rstrip().endswith(";"):
                break  # a declaration without a body (trait method)


def main() -> int:
    problems = []
    uses: dict[str, set[str]] = {}
    for path in sorted(SRC.rglob("*.rs")):
        text = without_tests(path.read_text())
        rel = path.relative_to(SRC)
        module = module_of(path)
        for other in set(re.findall(r"\b(?:crate|sluice)::([a-z_]+)", text)):
            if other != module:
                uses.setdefault(module, set()).add(other)
        if "runtime" in re.findall(r"\b(?:crate|sluice)::([a-z_]+)", text) and module not in (
            "main",
            "cli",
            "runtime",
        ):
            problems.append(f"src/{rel}: uses the runtime (only main.rs and src/cli/ may)")
        n = text.count("\n")
        if n > MAX_FILE_LINES:
            problems.append(f"src/{rel}: {n} lines (at most {MAX_FILE_LINES} outside tests)")
        for name, line, length in function_lengths(text):
            if length > MAX_FN_LINES:
                problems.append(
                    f"src/{rel}:{line}: fn {name} is {length} lines (at most {MAX_FN_LINES})"
                )
    # A cycle: a module reachable from itself.
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in uses.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for module in sorted(uses):
        if module in reach(module):
            back = sorted(m for m in uses[module] if module in reach(m) or m == module)
            problems.append(f"module cycle: {module} <-> {', '.join(back)}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The arms of a tuned grid's cell at the values its tuning chose, as YAML arm mappings for an audit grid
(forget-quality, relearn), which has no tuning stage of its own:

    python scripts/tuned-arms.py GRID RUNS_DIR dataset=fashion_mnist architecture=mlp forget=class:5

Prints one mapping per arm (each evaluation cell's axis values but the ones given and the seed), from the grid's
own evaluation cells: the same configuration, hence the same unlearned model, as the study's runs."""

import sys

import yaml

from softtargets.sweep.grid import ALIASES, load_grid


def main(grid_file: str, runs_dir: str, filters: list[str]) -> None:
    wanted = dict(f.split("=", 1) for f in filters)
    grid = load_grid(grid_file, {"out": runs_dir}).where(wanted)
    if grid.pending:
        sys.exit(f"{len(grid.pending)} arm(s) of this cell are still tuning: wait for them")
    short = {dotted: name for name, dotted in ALIASES.items()}
    seen = []
    for cell in grid.cells:
        if cell.tuning:
            continue
        arm = {}
        for key, value in cell.values.items():
            if key in wanted or key == "seed":
                continue
            if isinstance(value, dict):  # the arm as written, less its candidates
                arm.update({k: v for k, v in value.items() if k != "tune"})
            else:  # the tuned values it ran with
                arm[short.get(key, key)] = value
        if arm not in seen:
            seen.append(arm)
            print("    - " + yaml.safe_dump(arm, default_flow_style=True, sort_keys=False, width=200).strip())


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])

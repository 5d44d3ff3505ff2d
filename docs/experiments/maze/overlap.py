"""How many mazes of an eval set occur in a training set, up to the 8 rotations/reflections
that training augmentation applies (small boards have few distinct mazes, so a generated
"held-out" set can repeat training mazes).

    .venv/bin/python docs/experiments/maze/overlap.py TRAIN.npz EVAL.npz
"""

import sys

import numpy as np

train = np.load(sys.argv[1])["inputs"]
evals = np.load(sys.argv[2])["inputs"]
seen = {m.tobytes() for m in train if m.shape[0] == m.shape[1]}
shape = train.shape[1:]


def symmetries(m: np.ndarray) -> list[np.ndarray]:
    rots = [np.rot90(m, k) for k in range(4)]
    return rots + [r.T for r in rots]


hits = sum(any(s.shape == shape and np.ascontiguousarray(s).tobytes() in seen
               for s in symmetries(m)) for m in evals)
print(f"{hits} of {len(evals)} eval mazes ({hits / len(evals):.1%}) occur in {sys.argv[1]} "
      f"({len(train)} mazes) up to rotation/reflection")

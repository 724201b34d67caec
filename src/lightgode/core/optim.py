"""Adam for row-sparse gradients that gives dense Adam's weights while touching only the batch's rows.

In dense Adam a row with a zero gradient still moves, on its decaying first moment, for many steps after the
last batch that contained it; torch's SparseAdam drops those moves (a different optimiser, which converges lower
on DirectAU). :class:`RowAdam` skips the work instead of the moves: when a row is next touched (or at
:meth:`RowAdam.flush`) it applies all the zero-gradient steps it missed at once, in closed form.

For a row last updated at step s with moments m, v, each zero-gradient step j > s moves it by
lr * m/sqrt(v) * r^(j-s) * c_j (leaving Adam's eps aside), with r = beta1 / sqrt(beta2) and the bias corrections
c_j = sqrt(1 - beta2^j) / (1 - beta1^j). The sum over j = s+1..e is F(s) - r^(e-s) F(e), where
F(s) = sum_{k>=1} r^k c_{s+k} is tabulated once (c_j = 1 to double precision from about 36,000 steps on).
Adam's eps is carried to first order by a second table of the same kind, and elements whose sqrt(v) is under
100 eps (where that expansion fails) are summed step by step. So the weights equal dense Adam's to float
rounding; tests/test_optim.py checks them against ``torch.optim.Adam`` for gradients from 1 down to 1e-11.
Weight decay would give every row a gradient at every step, so there is none here.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from scipy.signal import lfilter


class _Tails(NamedTuple):
    """Tabulated tail sums of the zero-gradient steps for one pair of betas (see the module docstring)."""

    F: np.ndarray  # F(s) = sum_{k>=1} r^k c_{s+k}, s = 0..J (float64)
    G: np.ndarray  # G(s) = sum_{k>=1} q^k d_{s+k}: the first-order eps term
    J: int  # both are constant from step J on (bias corrections equal 1 to double precision)
    r: float  # beta1 / sqrt(beta2)
    q: float  # beta1 / beta2
    K: int  # gap beyond which r^k < 2^-56: later zero-gradient steps move a row by nothing


def _tails(beta1: float, beta2: float) -> _Tails:
    """F and G by backward recursion, e.g. F(s) = r (c_{s+1} + F(s+1)), from their constant value at J."""
    r, q = beta1 / math.sqrt(beta2), beta1 / beta2
    J = int(math.ceil(math.log(2.0**-56) / math.log(beta2))) + 1
    j = np.arange(1, J + 1, dtype=np.float64)
    bc1, bc2 = -np.expm1(j * math.log(beta1)), -np.expm1(j * math.log(beta2))  # 1 - beta^j, j = 1..J
    tables = []
    for ratio, coef in ((r, np.sqrt(bc2) / bc1), (q, bc2 / bc1)):
        at_j = ratio / (1.0 - ratio)  # coef = 1 from J on
        rev = lfilter([ratio], [1.0, -ratio], coef[::-1], zi=[ratio * at_j])[0]  # F(J-1), F(J-2), ..., F(0)
        tables.append(np.concatenate([rev[::-1], [at_j]]))
    K = int(math.ceil(math.log(2.0**-56) / math.log(r)))
    return _Tails(tables[0], tables[1], J, r, q, K)


def _explicit_moves(
    m: np.ndarray, v: np.ndarray, last: np.ndarray, gap: np.ndarray, betas, eps: float, K: int
) -> np.ndarray:
    """sum over the skipped steps of m_j / (1 - b1^j) / (sqrt(v_j / (1 - b2^j)) + eps), one element at a time.

    For the elements whose sqrt(v) is within a factor 100 of eps, where the series in eps does not hold.
    ``m, v, last, gap`` are 1-D per element; computed in float64 over at most K steps each (later steps move
    nothing), in chunks.
    """
    b1, b2 = betas
    out = np.empty(len(m), dtype=np.float64)
    k = np.arange(1, min(K, int(gap.max())) + 1, dtype=np.float64)
    for lo in range(0, len(m), 2048):
        sl = slice(lo, lo + 2048)
        j = last[sl, None] + k
        mk = m[sl, None].astype(np.float64) * b1**k / -np.expm1(j * math.log(b1))
        ak = np.sqrt(v[sl, None].astype(np.float64) * b2**k / -np.expm1(j * math.log(b2)))
        out[sl] = np.where(k <= gap[sl, None], mk / (ak + eps), 0.0).sum(axis=1)
    return out


def _series_moves(m: np.ndarray, root: np.ndarray, W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    """m/sqrt(v) W1 - m/v W2: the skipped steps' moves to first order in eps (lr and eps folded into W1, W2)."""
    inv = np.float32(1.0) / root
    moves = m * inv
    moves *= W1 - W2 * inv
    return moves


class RowAdam(torch.optim.Optimizer):
    """Adam (no weight decay, no amsgrad) for parameters whose gradients are sparse COO row sets.

    Each step reads and writes only the rows in the gradient; rows not in it are brought up to date when they
    are next touched or by :meth:`flush`, which the training loop calls before it reads the weights (end of each
    epoch). The state holds torch Adam's keys (``step``, ``exp_avg``, ``exp_avg_sq``) plus ``last``, the step
    each row was last brought up to date; :meth:`state_dict` flushes first, so it loads into ``torch.optim.Adam``
    and the other way round.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not (0 < lr < math.inf and 0 <= betas[0] < 1 and 0 < betas[1] < 1 and eps > 0):
            raise ValueError(f"impossible RowAdam settings: lr {lr}, betas {betas}, eps {eps}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))
        self._tails: dict[tuple[float, float], _Tails] = {}
        self._read: dict[int, tuple] = {}  # id(param) -> rows caught up before the gradient read them

    def _table(self, betas: tuple[float, float]) -> _Tails:
        key = (float(betas[0]), float(betas[1]))
        if key not in self._tails:
            self._tails[key] = _tails(*key)
        return self._tails[key]

    def _state(self, p: torch.Tensor) -> dict:
        st = self.state[p]
        if "exp_avg" not in st:
            st["step"] = torch.zeros((), dtype=torch.float32)
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        if "last" not in st:  # fresh, or loaded from a dense Adam / a flushed state: every row is up to date
            st["last"] = torch.full((p.shape[0],), int(st["step"]), dtype=torch.int64)
        return st

    def _catch_up(
        self, group: dict, arrays: tuple[np.ndarray, ...], sel: np.ndarray, end: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Apply to rows ``sel`` of (weights, exp_avg, exp_avg_sq, last) the zero-gradient steps last+1 .. end.

        Returns those rows' (weights, exp_avg, exp_avg_sq), up to date and written back.
        Each step divides by sqrt(v_j) + eps; the closed form expands that to first order in eps / sqrt(v_j)
        (exact to about (eps / sqrt(v))^2); elements with sqrt(v) < 100 eps are summed step by step instead.
        Works on numpy views of the tensors: a step touches a few hundred rows, where numpy's per-call cost is
        a fraction of torch's.
        """
        P, M, V, L = arrays
        last = L[sel]
        w, m, v = P[sel], M[sel], V[sel]
        if not (last < end).any():
            return w, m, v
        b1, b2 = group["betas"]
        eps = group["eps"]
        T = self._table(group["betas"])
        k = (end - last).astype(np.float64)
        at_s, at_e = np.minimum(last, T.J), min(end, T.J)
        lr = group["lr"]
        W1 = (lr * (T.F[at_s] - T.r**k * T.F[at_e])).astype(np.float32)[:, None]
        W2 = (lr * eps * (T.G[at_s] - T.q**k * T.G[at_e])).astype(np.float32)[:, None]
        root = np.sqrt(v)
        small = root <= 100 * eps  # includes v = 0 (rows never touched: m = 0, no move)
        if small.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                moves = _series_moves(m, root, W1, W2)
            np.putmask(moves, small, np.float32(0.0))
            rough = small & (m != 0)
            if rough.any():
                r_rows = np.nonzero(rough)[0]
                moves[rough] = lr * _explicit_moves(
                    m[rough], v[rough], last[r_rows], end - last[r_rows], (b1, b2), eps, T.K
                )
        else:
            moves = _series_moves(m, root, W1, W2)
        w -= moves
        m *= (b1**k).astype(np.float32)[:, None]
        v *= (b2**k).astype(np.float32)[:, None]
        P[sel], M[sel], V[sel], L[sel] = w, m, v, end
        return w, m, v

    def _arrays(self, p: torch.Tensor) -> tuple[dict, tuple[np.ndarray, ...]]:
        st = self._state(p)
        return st, (p.detach().numpy(), st["exp_avg"].numpy(), st["exp_avg_sq"].numpy(), st["last"].numpy())

    def _group(self, p: torch.Tensor) -> dict:
        return next(g for g in self.param_groups if any(q is p for q in g["params"]))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse or p.device.type != "cpu" or p.dtype != torch.float32:
                    raise RuntimeError(
                        "RowAdam needs float32 CPU weights with sparse COO row gradients (the model's use_sparse_grads)"
                    )
                st, arrays = self._arrays(p)
                t = int(st["step"]) + 1
                idx, vals = p.grad._indices()[0], p.grad._values()
                read = self._read.pop(id(p), None)
                if read is not None and read[0] == (idx.data_ptr(), len(idx), t - 1):
                    rows, inverse, (w, m, v) = read[1], read[2], read[3]  # caught up by catch_up(p, idx)
                else:
                    rows, inverse = np.unique(idx.numpy(), return_inverse=True)
                    w, m, v = self._catch_up(group, arrays, rows, t - 1)
                g = (
                    torch.zeros(len(rows), vals.shape[1], dtype=vals.dtype)
                    .index_add_(0, torch.from_numpy(inverse.astype(np.int64, copy=False)), vals)
                    .numpy()
                )  # repeats summed
                st["step"] += 1
                m *= np.float32(b1)
                m += np.float32(1 - b1) * g
                g *= g
                v *= np.float32(b2)
                v += np.float32(1 - b2) * g
                # lr/(1-b1^t) m / (sqrt(v)/c + eps) with c = sqrt(1-b2^t), as c lr/(1-b1^t) m / (sqrt(v) + eps c)
                c = math.sqrt(1 - b2**t)
                denom = np.sqrt(v)
                denom += np.float32(group["eps"] * c)
                np.divide(m, denom, out=denom)
                denom *= np.float32(c * group["lr"] / (1 - b1**t))
                w -= denom
                P, M, V, L = arrays
                P[rows], M[rows], V[rows], L[rows] = w, m, v, t
        return loss

    @torch.no_grad()
    def catch_up(self, p: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Bring ``rows`` of ``p`` (default: all) up to the current step, as dense Adam would have moved them.

        Call it before reading rows to compute a gradient (a stale row would give a different gradient than
        dense Adam's): DirectAUMF does, through the hook that :func:`lightgode.core.train` gives it. The next
        :meth:`step` reuses the work when its gradient rows are this ``rows`` tensor.
        """
        st = self.state.get(p)
        if not st or "exp_avg" not in st:
            return  # no step yet: nothing to catch up
        st, arrays = self._arrays(p)
        t = int(st["step"])
        if rows is None:
            sel = np.flatnonzero(arrays[3] < t)
            if len(sel):
                self._catch_up(self._group(p), arrays, sel, t)
            return
        sel, inverse = np.unique(rows.numpy(), return_inverse=True)
        caught = self._catch_up(self._group(p), arrays, sel, t)
        self._read[id(p)] = ((rows.data_ptr(), len(rows), t), sel, inverse, caught)

    def flush(self) -> None:
        """Bring every row up to the current step, so that the weights equal dense Adam's."""
        for group in self.param_groups:
            for p in group["params"]:
                self.catch_up(p)

    def state_dict(self):
        """Flushed state in ``torch.optim.Adam``'s layout (no ``last``: every row is up to date)."""
        self.flush()
        sd = super().state_dict()
        sd["state"] = {i: {k: v for k, v in s.items() if k != "last"} for i, s in sd["state"].items()}
        for g in sd["param_groups"]:  # the keys torch.optim.Adam expects, at the values RowAdam implements
            g.update(
                weight_decay=0.0,
                amsgrad=False,
                maximize=False,
                foreach=None,
                capturable=False,
                differentiable=False,
                fused=None,
            )
        return sd

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            if group.get("weight_decay", 0.0) or group.get("amsgrad", False) or group.get("maximize", False):
                raise ValueError("RowAdam cannot continue an Adam state with weight decay, amsgrad or maximize")
            for p in group["params"]:
                if p in self.state:
                    self.state[p].pop("last", None)
                    self._state(p)

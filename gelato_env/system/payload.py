"""Bits that cross the device-edge link in one SD round (docs/design.md §4).

Per round, with gamma draft tokens, V the payload's vocabulary size, ``id = ceil(log2 V)`` bits
per token id, ``b_q`` bits per probability and ``h`` header bits per message:

- ``topp`` (GELATO [S]): up h + gamma·id + (sum_i |top-p set of q_i|)·(id + b_q);
  down h + verdict + id.
- ``full`` (vanilla distributed SD): up h + gamma·(id + V·b_q); down h + verdict + id.
- ``dssd`` (DSSD, arXiv 2507.12000): up h + gamma·(id + b_q); down h + verdict + id, plus
  V·b_q on rejection (the target's full p_j).

``verdict = ceil(log2(gamma_max + 2))`` bits encode the accepted count 0..gamma_max plus one
reserved code (end of generation). A round without drafting (gamma = 0) still sends the header
up: it asks the edge for one target token.

Both functions are pure and vectorised: they take Python ints/bools (and return a Python
``int``) or numpy integer/bool arrays (and return an ``int64`` array), with results that agree
exactly, element by element.
"""

from __future__ import annotations

from typing import TypeVar, overload

import numpy as np
import numpy.typing as npt

from gelato_env.system.params import PayloadParams

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
IntOrArray = TypeVar("IntOrArray", int, IntArray)


def verdict_bits(gamma_max: int) -> int:
    """ceil(log2(gamma_max + 2)), bits of the verification verdict.

    >>> verdict_bits(8)
    4
    """
    return (gamma_max + 1).bit_length()


def uplink_bits(
    n_drafted: IntOrArray, topp_size_sum: IntOrArray, payload: PayloadParams
) -> IntOrArray:
    """Uplink payload of one round, bits (table in the module docstring).

    Args:
        n_drafted: gamma, draft tokens sent this round (>= 0); an int or an int array of any
            shape.
        topp_size_sum: sum over the round's draft tokens of the size of the top-p set of q_i
            (recorded in traces); only the ``topp`` protocol reads it. Same kind/shape as
            ``n_drafted``.
        payload: the protocol and its sizes.

    Returns:
        Bits, an int (int inputs) or an int64 array broadcast from the inputs.

    >>> uplink_bits(4, 20, PayloadParams("topp"))  # 64 + 4·18 + 20·(18 + 16)
    816
    >>> uplink_bits(1, 0, PayloadParams("full"))  # 64 + 18 + 151936·16
    2431058
    >>> uplink_bits(4, 0, PayloadParams("dssd"))  # 64 + 4·(18 + 16)
    200
    """
    id_bits = payload.token_id_bits
    if payload.protocol == "topp":
        return (
            payload.header_bits
            + n_drafted * id_bits
            + topp_size_sum * (id_bits + payload.prob_bits)
        )
    if payload.protocol == "full":
        return payload.header_bits + n_drafted * (id_bits + payload.vocab_size * payload.prob_bits)
    return payload.header_bits + n_drafted * (id_bits + payload.prob_bits)


@overload
def downlink_bits(rejected: bool, payload: PayloadParams, gamma_max: int) -> int: ...


@overload
def downlink_bits(rejected: BoolArray, payload: PayloadParams, gamma_max: int) -> IntArray: ...


def downlink_bits(
    rejected: bool | BoolArray, payload: PayloadParams, gamma_max: int
) -> int | IntArray:
    """Downlink payload of one round, bits: verdict + correction/bonus token (+ DSSD's p_j).

    Args:
        rejected: whether verification rejected a draft token this round (a bool, or a bool
            array of any shape for a batch of rounds). Only ``dssd`` reads it.
        payload: the protocol and its sizes.
        gamma_max: largest drafting budget (sets the verdict width).

    Returns:
        Bits, an int (bool input) or an int64 array of ``rejected``'s shape.

    >>> downlink_bits(False, PayloadParams("topp"), 8)  # 64 + 4 + 18
    86
    >>> downlink_bits(True, PayloadParams("dssd"), 8)  # 86 + 151936·16
    2431062
    """
    base = payload.header_bits + verdict_bits(gamma_max) + payload.token_id_bits
    if payload.protocol == "dssd":
        full_p = payload.vocab_size * payload.prob_bits
        if isinstance(rejected, np.ndarray):
            return base + rejected.astype(np.int64) * full_p
        return base + full_p if rejected else base
    if isinstance(rejected, np.ndarray):
        return np.full(rejected.shape, base, dtype=np.int64)
    return base

"""The Occlusion Reasoning Module (method.md §B): the objects of one image explained together.

1. feed-forward class and mixture of every object, from the likelihood terms of its ONE backbone pass
   (:class:`~occseg.inference.single.ObjectState`); no later step runs the backbone again;
2. conflicts: pixels two objects both claim as visible;
3. competition: each conflicted pixel goes to the object that explains it best. The competitions:

   - ``colour`` (the default when the image is given and refinement is on): the objects' masks are first
     refined at image resolution (:mod:`occseg.refine`), and each conflicted pixel goes to the object whose
     colour model (from the pixels only it claims) gives the pixel's colour the higher density; in ``nod`` the
     object behind must beat the front one by ``SceneConfig.colour_margin`` nats (:mod:`occseg.reasoning.colour`);
   - ``foreground`` (the paper, on the model's 16-px cells): the object whose chosen mixture gives the
     cell's features the higher log-likelihood at that position (method.md §B.2), or the outlier model when
     it explains the pixel better than both objects do (both then lose it);
   - ``margin``: the labelling margins, as the released code compares them (§B.3);
   - ``head`` (``auto`` with a mask head): the head's logits, a pixel changing hands only on a clear margin
     (``SceneConfig.head_tie``); ``head_colour``: those, and where the head is unsure the colour models, a pixel
     changing hands only on a clear colour margin (``SceneConfig.colour_tie``);

   equal scores leave the pixel with both;
4. order: by default (``SceneConfig.order``, ``auto`` with a model that has the part-position classifier) the
   model's part-position vote on the cells where the two boxes meet decides who is in front
   (:mod:`occseg.reasoning.position_order`); otherwise (``counts``, the paper) the object holding more of a
   pair's conflict is in front (a tie gives no order); ``gated``: the vote where it is sure
   (``SceneConfig.sure_vote``), the counts elsewhere. In ``od`` mode the whole conflict goes to the object in
   front, in ``nod`` mode each pixel stays with its winner (for the colour competition: the object behind needs
   the margin, close calls show the object in front);
5. the pixels an object lost become its occlusion prior: it is re-classified with them masked out
   (class and mixture may change; a given class is kept) and its masks are recomputed (the lost pixels are
   occluded, and stay inside its amodal mask; the pixels it still claims and did not lose stay visible);
6. repeated ``reasoning_iters`` times; the priors are rebuilt each round from the masks of the current
   classes and mixtures, so when a round changes no class or mixture the next one would repeat it exactly,
   and the loop stops;
7. depth layers per group of overlapping objects from the pairwise relations
   (:func:`~occseg.reasoning.order.scene_layers`, cycles broken at their least confident relation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from occseg.choices import HEAD_COMPETITIONS, IMAGE_COMPETITIONS, VOTE_ORDER_CUES, Competition, Reasoning, choices
from occseg.compnet.model import CompNetModel
from occseg.geometry.boxes import cell_centres_image, mask_to_box, overlapping_pairs, resample_cells_to_image
from occseg.inference.single import classify, finish_object, occlusion_cells
from occseg.inference.types import ObjectResult, ObjectState, SceneConfig, SceneResult
from occseg.reasoning.hidden import decided_order, hide_behind
from occseg.reasoning.order import scene_layers

MODES: tuple[str, ...] = tuple(m for m in choices(Reasoning) if m != "off")  # the modes that reason

Window = tuple[slice, slice] | None


def window_overlap(a: ObjectState, b: ObjectState) -> Window:
    """The image region where the crops of two objects meet (``None``: they do not)."""
    ax1, ay1, ax2, ay2 = a.window.window
    bx1, by1, bx2, by2 = b.window.window
    x1, y1, x2, y2 = max(ax1, bx1), max(ay1, by1), min(ax2, bx2), min(ay2, by2)
    if x2 <= x1 or y2 <= y1:
        return None
    return slice(y1, y2), slice(x1, x2)


def pair_windows(states: Sequence[ObjectState]) -> dict[tuple[int, int], tuple[slice, slice]]:
    """:func:`window_overlap` of every pair ``(i, j)``, ``i < j``, whose crop windows meet, and of no other pair
    (:func:`~occseg.geometry.boxes.overlapping_pairs`): memory and Python loops grow with the pairs that can
    compete, not with the square of the number of objects."""
    pairs = overlapping_pairs([st.window.window for st in states])
    found = {(i, j): window_overlap(states[i], states[j]) for i, j in pairs}
    return {k: w for k, w in found.items() if w is not None}


def _neighbours(
    n: int, windows: Sequence[Sequence[Window]] | Mapping[tuple[int, int], Window] | None
) -> list[Iterable[tuple[int, tuple[slice, slice]]]]:
    """Per object i, ``(j, window)`` of the objects ``j > i`` it may compete with, in increasing ``j``."""
    if windows is None:
        full = (slice(None), slice(None))
        return [((j, full) for j in range(i + 1, n)) for i in range(n)]
    if isinstance(windows, Mapping):
        out: list[list[tuple[int, tuple[slice, slice]]]] = [[] for _ in range(n)]
        for (i, j), win in sorted(windows.items()):
            if win is not None:
                out[i].append((j, win))
        return out
    return [[(j, windows[i][j]) for j in range(i + 1, n) if windows[i][j] is not None] for i in range(n)]


def resolve_conflicts(
    visible: Sequence[np.ndarray],
    strength: Sequence[np.ndarray],
    mode: str,
    windows: Sequence[Sequence[Window]] | Mapping[tuple[int, int], Window] | None = None,
    *,
    outlier: Sequence[np.ndarray] | None = None,
    known_order: np.ndarray | None = None,
    known_confidence: np.ndarray | None = None,
    margin: float = 0.0,
    tie: float = 0.0,
    fallback: Sequence[np.ndarray] | None = None,
    fallback_tie: float = 0.0,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict[str, dict[str, int]]]:
    """Pairwise competition over the pixels two objects both claim as visible.

    ``visible[n]``: boolean image masks; ``strength[n]``: how well object n explains each pixel (float maps of
    the same size, comparable between objects; anything indexable by the pair windows, e.g.
    :class:`~occseg.reasoning.colour.ColourClaim`). ``outlier[n]`` (optional): the outlier model's score of each
    pixel on the same scale; a conflicted pixel that neither object explains better than the outlier model
    goes to the outlier model, and both objects lose it. ``windows[i][j]``: the region where i and j can
    overlap (``None``: they cannot; ``windows`` itself ``None``: the whole image for every pair), a speed-up; or
    ``{(i, j): window}`` (``i < j``) for the pairs that can meet only (:func:`pair_windows`: no ``N x N`` table).
    ``known_order`` (optional ``(N, N)``, same convention as the returned order): where it is non-zero it
    decides who is in front instead of the pixel counts (e.g. a depth order known from elsewhere, or the
    part-position vote); ``known_confidence`` (optional ``(N, N)``, symmetric) is then the relation's
    confidence instead of the counts' margin.
    ``margin`` (>= 0, ``nod`` only): once a pair has an order, the object behind takes a conflicted pixel only
    when its strength exceeds the front object's by more than this, and the front object takes the rest (close
    calls show the object in front); the counts and the order use the plain winners.
    ``tie`` (>= 0): an object wins a conflicted pixel only when its strength exceeds the other's by more than
    this; closer calls count as equal scores (the pixel stays with both).
    ``fallback[n]`` (optional, same form as ``strength``): a second score that decides the pixels where the first
    is unsure (``|strength_i - strength_j| <= tie``), e.g. the colour models where the mask head's logits say
    "person" for both: such a pixel goes to the object whose fallback score exceeds the other's by more than
    ``fallback_tie``, closer calls stay with both; ``margin`` is then not used.

    Per pair, the object that wins more of the conflicted pixels is in front (equal counts: no order). ``nod``:
    each object loses the pixels the other (or the outlier model) won; ``od``: the object behind loses the
    whole conflict, the one in front only the outlier's pixels; without an order nobody loses an object's
    pixels.

    Returns ``(lost, order, confidence, counts)``: the pixels each object loses, the order matrix
    (``order[i, j] = +1``: i in front of j, antisymmetric), the relation confidences ``|won_i - won_j| /
    conflict`` (symmetric, 0 without an order) and, per overlapping pair ``"i-j"`` (i < j), the pixel counts
    ``{"conflict", "won_by_first", "won_by_second", "won_by_outlier"}``.
    """
    n = len(visible)
    _check_conflict_inputs(n, strength, mode, outlier, known_order, known_confidence, margin)
    if not tie >= 0:
        raise ValueError(f"tie must be >= 0, not {tie}")
    if fallback is not None and len(fallback) != n:
        raise ValueError(f"{n} visible masks but {len(fallback)} fallback maps")
    if not fallback_tie >= 0:
        raise ValueError(f"fallback_tie must be >= 0, not {fallback_tie}")
    neighbours = _neighbours(n, windows)
    lost = [np.zeros(v.shape, dtype=bool) for v in visible]
    order = np.zeros((n, n), dtype=np.int8)
    conf = np.zeros((n, n), dtype=np.float64)
    counts: dict[str, dict[str, int]] = {}
    for i in range(n):
        for j, win in neighbours[i]:
            c = visible[i][win] & visible[j][win]
            nc = int(np.count_nonzero(c))
            if nc == 0:
                continue
            si, sj = strength[i][win], strength[j][win]
            to_outlier = np.zeros_like(c)
            if outlier is not None:
                to_outlier = c & (si <= outlier[i][win]) & (sj <= outlier[j][win])
            second = None if fallback is None else (fallback[i][win], fallback[j][win])
            i_wins, j_wins, i_takes, j_takes = pair_claims(
                (si, sj), second, c & ~to_outlier, (tie, fallback_tie), margin
            )
            ni, nj = int(np.count_nonzero(i_wins)), int(np.count_nonzero(j_wins))
            counts[f"{i}-{j}"] = {
                "conflict": nc,
                "won_by_first": ni,
                "won_by_second": nj,
                "won_by_outlier": int(np.count_nonzero(to_outlier)),
            }
            front = None if ni == nj else (i if ni > nj else j)
            confidence = abs(ni - nj) / nc
            if known_order is not None and known_order[i, j] != 0:
                front = i if known_order[i, j] > 0 else j
                if known_confidence is not None:
                    confidence = float(known_confidence[i, j])
            if front is not None:
                order[i, j] = 1 if front == i else -1
                order[j, i] = -order[i, j]
                conf[i, j] = conf[j, i] = confidence
            by_margin = (i_takes, j_takes) if margin > 0 and fallback is None else None
            lost_i, lost_j = _pair_losses(c, to_outlier, i_wins, j_wins, by_margin, front == i, front, mode)
            lost[i][win] |= lost_i
            lost[j][win] |= lost_j
    return lost, order, conf, counts


def _check_conflict_inputs(
    n: int,
    strength: Sequence,
    mode: str,
    outlier: Sequence | None,
    known_order: np.ndarray | None,
    known_confidence: np.ndarray | None,
    margin: float,
) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if len(strength) != n:
        raise ValueError(f"{n} visible masks but {len(strength)} strength maps")
    if outlier is not None and len(outlier) != n:
        raise ValueError(f"{n} visible masks but {len(outlier)} outlier maps")
    if known_order is not None and np.shape(known_order) != (n, n):
        raise ValueError(f"known_order has shape {np.shape(known_order)}, expected {(n, n)}")
    if known_confidence is not None and np.shape(known_confidence) != (n, n):
        raise ValueError(f"known_confidence has shape {np.shape(known_confidence)}, expected {(n, n)}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, not {margin}")


def pair_claims(
    first: tuple[np.ndarray, np.ndarray],
    second: tuple[np.ndarray, np.ndarray] | None,
    free: np.ndarray,
    ties: tuple[float, float],
    margin: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Who of a pair ``(i, j)`` claims each of the ``free`` conflicted pixels (boolean, in the pair's window):
    ``(i_wins, j_wins, i_takes, j_takes)``. A pixel is won by the object whose ``first`` score exceeds the other's by
    more than ``ties[0]``; where neither does, by the one whose ``second`` score (``None``: no second score) exceeds
    the other's by more than ``ties[1]``. ``i_takes``: the pixels i would take from j in front of it, those where
    its first score leads by more than ``margin`` (with a second score: its wins)."""
    si, sj = first
    if second is None:
        return (
            free & (si > sj + ties[0]),
            free & (sj > si + ties[0]),
            free & (si > sj + margin),
            free & (sj > si + margin),
        )
    unsure = free & (np.abs(si - sj) <= ties[0])
    fi, fj = second
    i_wins = (free & (si > sj + ties[0])) | (unsure & (fi > fj + ties[1]))
    j_wins = (free & (sj > si + ties[0])) | (unsure & (fj > fi + ties[1]))
    return i_wins, j_wins, i_wins, j_wins


def _pair_losses(
    c: np.ndarray,
    to_outlier: np.ndarray,
    i_wins: np.ndarray,
    j_wins: np.ndarray,
    by_margin: tuple[np.ndarray, np.ndarray] | None,
    i_in_front: bool,
    front: int | None,
    mode: str,
) -> tuple[np.ndarray, np.ndarray]:
    """The conflicted pixels (``c``, in the pair's window) each of a pair ``(i, j)`` loses: both the outlier's;
    ``od``: the object behind the whole conflict; ``nod``: each the other's wins, or with ``by_margin`` (the
    pixels each would take from the other, :func:`pair_claims`) the object behind all but the pixels it takes,
    which the front object loses."""
    lost_i, lost_j = to_outlier.copy(), to_outlier.copy()
    if mode == "od":
        if front is not None:
            (lost_j if i_in_front else lost_i)[...] |= c
    elif by_margin is not None and front is not None:
        back_takes = by_margin[1] if i_in_front else by_margin[0]
        lost_front, lost_back = (lost_i, lost_j) if i_in_front else (lost_j, lost_i)
        lost_front |= back_takes
        lost_back |= c & ~to_outlier & ~back_takes
    else:
        lost_i |= j_wins
        lost_j |= i_wins
    return lost_i, lost_j


def claim_maps(
    model: CompNetModel, result: ObjectResult, state: ObjectState, competition: str = "foreground"
) -> tuple[np.ndarray, np.ndarray | None]:
    """How well an object explains each image pixel, and the outlier model's score there (image-size maps,
    resampled bilinearly from the object's crop cells, as its masks are).

    ``foreground`` (default; "the object whose foreground explains it best", method.md §B.2): the log-likelihood
    of the cell's features under the object's chosen mixture at that position, ``log sum_k alpha_ik L_ik``
    (no shape prior, no bias), against the weighted outlier model ``log(w sum_k beta_k L_ik)``.
    ``margin`` (the released code, §B.3): the signed labelling margin (+ where the cell is labelled object, -
    elsewhere); no outlier map.
    """
    from occseg.compnet.scoring import from_grid

    h, w = state.image_size
    if competition == "margin":
        signed = np.where(result.labels == 1, result.margin, -result.margin).astype(np.float32)
        return resample_cells_to_image(signed, state.window, state.stride, h, w, fill=-1e3), None
    if competition != "foreground":
        raise ValueError(f"competition must be foreground or margin, not {competition!r}")
    t = state.terms[result.category]
    fg = from_grid(t.log_fg[result.mixture], t.offset, state.crop_cells, fill=-1e4)
    out = from_grid(t.log_out, t.offset, state.crop_cells, fill=-1e4) + float(np.log(model.settings.outlier_weight))
    to_img = [
        resample_cells_to_image(m.float().cpu().numpy(), state.window, state.stride, h, w, fill=-1e4) for m in (fg, out)
    ]
    return to_img[0], to_img[1]


COMPETITIONS: tuple[str, ...] = tuple(c for c in choices(Competition) if c != "auto")


def resolve_competition(cfg: SceneConfig, image: np.ndarray | None, head: bool = False) -> str:
    """The competition a scene config asks for: ``cfg.competition``, where ``auto`` means, when the image is
    given and the config refines masks, ``head`` for objects with the mask head's inputs (``head``) and ``colour``
    otherwise, else ``foreground``."""
    wanted = cfg.competition
    refine = cfg.refine
    if wanted == "auto":
        if image is None or refine is None or not refine.enabled:
            return "foreground"
        return "head" if head else "colour"
    if wanted not in COMPETITIONS:
        raise ValueError(f"competition must be auto, {', '.join(COMPETITIONS)}, not {wanted!r}")
    return wanted


def order_cue(model: CompNetModel, states: Sequence[ObjectState], cfg: SceneConfig) -> str:
    """What decides who is in front (``counts``, ``position`` or ``gated``) for ``cfg.order``: ``auto`` takes the
    part-position vote when the model has the classifier (and every object its log-probabilities)."""
    have = model.position is not None and all(st.position is not None for st in states)
    if cfg.order in VOTE_ORDER_CUES:
        model.require_position(f"order={cfg.order!r}")
        if not have:
            raise ValueError(f"order={cfg.order!r}: an object has no part-position log-probabilities")
    if cfg.order == "auto":
        return "position" if have else "counts"
    return cfg.order


def state_position_order(model: CompNetModel, states: Sequence[ObjectState]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~occseg.reasoning.position_order.position_order` of the objects of one image from their crops'
    part-position log-probabilities, in the boxes the caller gave (``ObjectState.box``), amodal or visible.

    Visible boxes are used as they are, not the amodal boxes completed from them: the classifier learned its bins
    from annotated boxes, which outline what is seen, and on the Occlusion Challenge with visible boxes given the
    vote in the given boxes ordered more of the occluded pairs than in the completed ones on every split tried
    (README, "With visible (modal) boxes given")."""
    from occseg.reasoning.position_order import position_order

    boxes = [st.box for st in states]
    cells = [(st.position, cell_centres_image(st.window, st.stride, tuple(st.position.shape[1:]))) for st in states]
    return position_order(boxes, cells, model.position.bins)


def reason(
    model: CompNetModel,
    states: list[ObjectState],
    cfg: SceneConfig,
    given: Sequence[str | None],
    *,
    competition: str | None = None,
    use_outlier: bool = True,
    known_order: np.ndarray | None = None,
    image: np.ndarray | None = None,
) -> SceneResult:
    """Run the ORM over the objects of one image (see the module docstring); returns a
    :class:`~occseg.inference.scene.SceneResult` (``cfg``: its :class:`~occseg.inference.scene.SceneConfig`).

    ``competition`` (default: :func:`resolve_competition`) chooses the competition's scores; ``colour`` needs
    the ``image`` and refines every object's masks with ``cfg.refine`` (its defaults when the config has none)
    before the competition, so the returned masks are refined. ``use_outlier`` lets the outlier model take part
    in the ``foreground`` competition. ``known_order`` fixes the pairs' order where it is non-zero (see
    :func:`resolve_conflicts`). ``report["iterations"]`` holds, per round, the pair counts of the competition
    and how many objects changed class or mixture in the re-classification (with the colour competition, when
    the last round changed one, a final competition on the final masks adds an entry);
    ``order_confidence`` the confidence of each decided relation (the vote's, or the counts' margin);
    ``report["competition"]`` the competition used, ``report["order_cue"]`` what decided who is in front
    (``counts``, ``position`` or ``given``; see ``SceneConfig.order`` and
    :mod:`occseg.reasoning.position_order`).
    """
    has_head = bool(states) and all(st.head is not None for st in states)
    competition = competition or resolve_competition(cfg, image, has_head)
    if competition not in COMPETITIONS:
        raise ValueError(f"competition must be one of {', '.join(COMPETITIONS)}, not {competition!r}")
    if competition in IMAGE_COMPETITIONS and image is None:
        raise ValueError(f"the {competition} competition needs the image")
    if competition in HEAD_COMPETITIONS and any(st.head is None for st in states):
        raise ValueError("the head competition needs a model with a mask head (occseg train learns one)")
    run = _Reasoning(model, states, cfg, list(given), competition, image, use_outlier)
    cue = run.decide_order_cue(known_order)
    lost, order, conf, history = run.rounds()
    objects = [run.final_object(k, lost[k]) for k in range(len(states))]
    if cfg.hidden in ("front", "agree", "auto"):  # the shape under the objects in front is hidden too
        objects = hide_behind(objects, decided_order(order, run.vote), agree=cfg.hidden != "front")
    layers, groups, rep = scene_layers(order, conf)
    rep["iterations"] = history
    rep["competition"] = competition
    rep["order_cue"] = cue
    # resolve_conflicts gives a confidence only to the relations it decided
    return SceneResult(objects=objects, order=order, layers=layers, groups=groups, report=rep, order_confidence=conf)


Unreasoned = tuple[ObjectResult, "np.ndarray | None", "np.ndarray | None"]


class _Reasoning:
    """The state of one run of :func:`reason`: the objects' current classes and mixtures, their masks without
    occlusion prior (cached per class and mixture), and the settings of the competition."""

    def __init__(
        self,
        model: CompNetModel,
        states: list[ObjectState],
        cfg: SceneConfig,
        given: list[str | None],
        competition: str,
        image: np.ndarray | None,
        use_outlier: bool,
    ) -> None:
        from occseg.reasoning.colour import DEFAULT_BINS
        from occseg.refine.colour import colour_index

        self.model, self.states, self.cfg, self.given, self.image = model, states, cfg, given, image
        self.competition, self.use_outlier = competition, use_outlier
        self.colour = competition in IMAGE_COMPETITIONS  # refined masks; "head": the head's logits decide
        self.rcfg = None
        if self.colour:
            from occseg.refine import RefineConfig

            self.rcfg = cfg.refine or RefineConfig()
        self.index = colour_index(image, DEFAULT_BINS) if self.colour else None  # one colour lookup for every round
        self.known_order: np.ndarray | None = None
        self.known_conf: np.ndarray | None = None
        self.vote: np.ndarray | None = None  # the whole vote (or the order given), also where it is not sure
        self.windows = pair_windows(states)
        self.labels = [classify(model, st, given_label=given[k]) for k, st in enumerate(states)]
        self.cache: dict[tuple[int, str, int], Unreasoned] = {}

    def decide_order_cue(self, known_order: np.ndarray | None) -> str:
        """What decides who is in front (``given``: ``known_order``), and the order it fixes in advance."""
        cue = order_cue(self.model, self.states, self.cfg)
        if known_order is not None:
            self.known_order = self.vote = known_order
            return "given"
        if cue in VOTE_ORDER_CUES:
            self.vote, self.known_conf = state_position_order(self.model, self.states)
            sure = self.known_conf >= self.cfg.sure_vote if cue == "gated" else True
            self.known_order = np.where(sure, self.vote, 0).astype(self.vote.dtype)
        return cue

    def unreasoned(self, k: int) -> Unreasoned:
        """Object k's masks without occlusion prior under its current class and mixture (refined for the colour
        competition), and its claim maps on the model's cells (None for the colour competition)."""
        key = (k, self.labels[k][0], self.labels[k][1])
        if key not in self.cache:
            res = finish_object(self.model, self.states[k], *self.labels[k], hidden=self.cfg.hidden)
            if self.colour:
                from occseg.refine import refine_object

                res.visible, res.amodal = refine_object(self.image, res, self.states[k], self.rcfg)
                res.amodal_box = mask_to_box(res.amodal) or res.amodal_box
                self.cache[key] = (res, None, None)
            else:
                self.cache[key] = (res, *claim_maps(self.model, res, self.states[k], self.competition))
        return self.cache[key]

    def compete(self) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, dict]:
        """One competition over the conflicts of the current masks (:func:`resolve_conflicts`)."""
        from occseg.reasoning.colour import colour_claims

        raw = [self.unreasoned(k) for k in range(len(self.states))]
        vis = [r.visible for r, _, _ in raw]
        fallback = None
        if self.competition in HEAD_COMPETITIONS:
            from occseg.head.predict import image_logits

            strength = [image_logits(r.extra["head_logits"], st.head) for (r, _, _), st in zip(raw, self.states)]
            outl = None
            if self.competition == "head_colour":
                fallback = colour_claims(self.image, vis, index=self.index)
        elif self.colour:
            strength, outl = colour_claims(self.image, vis, index=self.index), None
        else:
            strength = [s for _, s, _ in raw]
            outl = [o for _, _, o in raw] if self.use_outlier and all(o is not None for _, _, o in raw) else None
        margin = self.cfg.colour_margin if self.competition == "colour" else 0.0
        tie = self.cfg.head_tie if self.competition in HEAD_COMPETITIONS else 0.0
        return resolve_conflicts(
            vis,
            strength,
            self.cfg.reasoning,
            self.windows,
            outlier=outl,
            known_order=self.known_order,
            known_confidence=self.known_conf,
            margin=margin,
            tie=tie,
            fallback=fallback,
            fallback_tie=self.cfg.colour_tie,
        )

    def reclassify(self, lost: list[np.ndarray]) -> int:
        """Every object classified again with the pixels it lost as its occlusion prior; how many changed class
        or mixture."""
        new_labels = []
        for k, st in enumerate(self.states):
            occ = {name: occlusion_cells(st, lost[k], name) for name in st.terms}
            new_labels.append(classify(self.model, st, occluded=occ, given_label=self.given[k]))
        changed = sum(a[:2] != b[:2] for a, b in zip(self.labels, new_labels))
        self.labels = new_labels
        return changed

    def rounds(self) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, list[dict]]:
        """``cfg.reasoning_iters`` rounds of competition and re-classification (fewer when a round changes no
        class or mixture): the pixels each object lost, the order, its confidences and the rounds' record."""
        n = len(self.states)
        history: list[dict] = []
        lost: list[np.ndarray] = [np.zeros(st.image_size, dtype=bool) for st in self.states]
        order = np.zeros((n, n), dtype=np.int8)
        conf = np.zeros((n, n))
        changed = 0
        for it in range(self.cfg.reasoning_iters):
            lost, order, conf, counts = self.compete()
            changed = self.reclassify(lost)
            history.append({"iteration": it + 1, "pairs": counts, "reclassified": changed})
            if changed == 0:
                break  # the next round would see the same masks and find the same conflicts
        if self.colour and changed:
            # the last re-classification changed masks the competition has not seen: the lost pixels are taken
            # from the final masks (image-resolution masks are cut by them directly)
            lost, order, conf, counts = self.compete()
            history.append({"iteration": len(history) + 1, "pairs": counts, "reclassified": 0})
        return lost, order, conf, history

    def final_object(self, k: int, lost: np.ndarray) -> ObjectResult:
        """Object k's result: its masks under its final class and mixture, the ``lost`` pixels occluded."""
        base = self.unreasoned(k)[0]
        if not lost.any():
            res = replace(base, extra=dict(base.extra))
        elif self.colour:
            # image-resolution masks: the lost pixels leave the visible mask and are the occluded part
            res = replace(base, visible=base.visible & ~lost, amodal=base.amodal | lost, extra=dict(base.extra))
        else:
            raw_visible = base.visible
            res = finish_object(
                self.model, self.states[k], *self.labels[k], occluded_pixels=lost, hidden=self.cfg.hidden
            )
            # the occlusion prior works on 16-px cells: the pixels the object still claims and did not lose stay
            # visible, so its visible mask ends exactly where the object in front begins
            res.visible = res.visible | (raw_visible & ~lost)
            # the pixels lost to an object in front are this object's occluded part: still inside its amodal mask
            res.amodal = res.amodal | (lost & raw_visible) | res.visible
        if lost.any():
            res.amodal_box = mask_to_box(res.amodal) or res.amodal_box
        res.extra["reasoning"] = {"occluded_pixels": int(np.count_nonzero(lost))}
        return res

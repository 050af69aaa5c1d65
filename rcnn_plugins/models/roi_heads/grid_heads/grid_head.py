"""``GridHead``: Grid R-CNN's localisation head (Lu et al., CVPR 2019; Grid R-CNN Plus; MMDetection 3.x
names, arguments, defaults and state_dict keys).

A box is located by a ``grid_size x grid_size`` grid of points (9: the corners, edge midpoints and
centre) predicted as heatmaps instead of regressed deltas. The RoI feature (14x14, of the RoI
enlarged 2x about its centre, as the targets are defined) goes through ``num_convs`` convs (the
first with stride 2) to ``grid_points`` groups of ``point_feat_channels`` channels; each point's
features are fused with its 4-neighbours' (first order), then with the neighbours' fused features
(second order); two grouped stride-2 transposed convs give one 28x28 heatmap per point, which covers
the point's *sub-region* of the 56x56 map over the enlarged RoI (Grid R-CNN Plus: the top-left point
only ever lies in the top-left quarter-ish, etc.). The box's x1 is the score-weighted mean of the
left column's points' x, and so on.

Grid point ``j`` sits in column ``j // grid_size`` and row ``j % grid_size``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from ....registry import MODELS, build_or_use


def _point_trans(channels: int) -> nn.Sequential:
    """Feature transition between neighbouring points: depthwise 5x5 then pointwise 1x1."""
    return nn.Sequential(nn.Conv2d(channels, channels, 5, stride=1, padding=2, groups=channels),
                         nn.Conv2d(channels, channels, 1))


@MODELS.register_module()
class GridHead(BaseModule):
    """Args (MMDetection's):
        grid_points: number of grid points, a square >= 4 (9).
        num_convs: convs before the point features (8); the first has stride 2.
        roi_feat_size: side of the input RoI features (14); the whole heatmap is 4x that.
        in_channels: channels of the input RoI features.
        conv_kernel_size: kernel of those convs.
        point_feat_channels: channels per grid point (64); the convs output ``grid_points`` times that.
        deconv_kernel_size: kernel of the two stride-2 transposed convs.
        class_agnostic: kept for MMDetection's signature (the heatmaps are class-agnostic anyway).
        loss_grid: loss on the heatmap logits (sigmoid BCE, weight 15), on the fused and the
            unfused heatmaps.
        conv_cfg, norm_cfg: of the convs (GN with 36 groups).
    """

    def __init__(self, grid_points: int = 9, num_convs: int = 8, roi_feat_size: int = 14, in_channels: int = 256,
                 conv_kernel_size: int = 3, point_feat_channels: int = 64, deconv_kernel_size: int = 4,
                 class_agnostic: bool = False,
                 loss_grid: dict = dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=15),
                 conv_cfg: Optional[dict] = None, norm_cfg: Optional[dict] = dict(type='GN', num_groups=36),
                 init_cfg=[dict(type='Kaiming', layer=['Conv2d', 'Linear']),
                           dict(type='Normal', layer='ConvTranspose2d', std=0.001,
                                override=dict(type='Normal', name='deconv2', std=0.001,
                                              bias=-math.log(0.99 / 0.01)))]) -> None:
        super().__init__(init_cfg=init_cfg)
        self.grid_points = grid_points
        self.grid_size = int(round(math.sqrt(grid_points)))
        if grid_points < 4 or self.grid_size ** 2 != grid_points:
            raise ValueError(f'GridHead: grid_points must be a square number >= 4, got {grid_points}')
        if not isinstance(roi_feat_size, int):
            raise ValueError(f'GridHead: roi_feat_size must be one int (square RoIs), got {roi_feat_size!r}')
        self.num_convs, self.roi_feat_size, self.in_channels = num_convs, roi_feat_size, in_channels
        self.point_feat_channels = point_feat_channels
        self.conv_out_channels = point_feat_channels * grid_points
        if norm_cfg is not None and norm_cfg.get('type') == 'GN' and self.conv_out_channels % norm_cfg['num_groups']:
            raise ValueError(f'GridHead: {self.conv_out_channels} conv channels (point_feat_channels x grid_points) '
                             f'are not divisible by the GN num_groups={norm_cfg["num_groups"]}')
        self.class_agnostic = class_agnostic
        self.whole_map_size = roi_feat_size * 4
        self.sub_regions = self.calc_sub_regions()
        self.convs = nn.Sequential(*[
            ConvModule(in_channels if i == 0 else self.conv_out_channels, self.conv_out_channels, conv_kernel_size,
                       stride=2 if i == 0 else 1, padding=(conv_kernel_size - 1) // 2, conv_cfg=conv_cfg,
                       norm_cfg=norm_cfg, bias=True) for i in range(num_convs)])
        pad = (deconv_kernel_size - 2) // 2
        self.deconv1 = nn.ConvTranspose2d(self.conv_out_channels, self.conv_out_channels, deconv_kernel_size,
                                          stride=2, padding=pad, groups=grid_points)
        self.norm1 = nn.GroupNorm(grid_points, self.conv_out_channels)
        self.deconv2 = nn.ConvTranspose2d(self.conv_out_channels, grid_points, deconv_kernel_size, stride=2,
                                          padding=pad, groups=grid_points)
        # 4-neighbours of each point, in MMDetection's order (left, up, down, right).
        g = self.grid_size
        self.neighbor_points = []
        for i in range(g):  # column
            for j in range(g):  # row
                nbrs = ([(i - 1) * g + j] if i > 0 else []) + ([i * g + j - 1] if j > 0 else []) + \
                    ([i * g + j + 1] if j < g - 1 else []) + ([(i + 1) * g + j] if i < g - 1 else [])
                self.neighbor_points.append(tuple(nbrs))
        self.num_edges = sum(len(p) for p in self.neighbor_points)
        self.forder_trans = nn.ModuleList(
            nn.ModuleList(_point_trans(point_feat_channels) for _ in nbrs) for nbrs in self.neighbor_points)
        self.sorder_trans = nn.ModuleList(
            nn.ModuleList(_point_trans(point_feat_channels) for _ in nbrs) for nbrs in self.neighbor_points)
        self.loss_grid = build_or_use(MODELS, loss_grid)

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        """(R, C, 14, 14) RoI features -> dict(fused=(R, G, 28, 28), unfused=(R, G, 28, 28)) heatmap logits;
        ``unfused`` (without the neighbour fusion, supervised too in training) is ``fused`` in eval mode."""
        if x.shape[-2:] != (self.roi_feat_size, self.roi_feat_size):
            raise ValueError(f'GridHead: RoI features must be {self.roi_feat_size}x{self.roi_feat_size} '
                             f'(grid_roi_extractor output_size), got {tuple(x.shape[-2:])}')
        x = self.convs(x)
        c = self.point_feat_channels
        points = [x[:, i * c:(i + 1) * c] for i in range(self.grid_points)]
        first = [p + sum(t(points[n]) for t, n in zip(trans, nbrs))
                 for p, trans, nbrs in zip(points, self.forder_trans, self.neighbor_points)]
        second = [p + sum(t(first[n]) for t, n in zip(trans, nbrs))
                  for p, trans, nbrs in zip(points, self.sorder_trans, self.neighbor_points)]
        heatmap = self._decode_maps(torch.cat(second, dim=1))
        unfused = self._decode_maps(x) if self.training else heatmap
        return dict(fused=heatmap, unfused=unfused)

    def _decode_maps(self, x: Tensor) -> Tensor:
        return self.deconv2(F.relu(self.norm1(self.deconv1(x)), inplace=True))

    def calc_sub_regions(self) -> List[Tuple[int, int, int, int]]:
        """Per point, its (x1, y1, x2, y2) window of half the whole map (Grid R-CNN Plus): the first
        column / row at 0, the last at the half, inner ones around ``idx / (g - 1) - 0.25``."""
        half = self.whole_map_size // 4 * 2

        def start(idx: int) -> int:
            if idx == 0:
                return 0
            if idx == self.grid_size - 1:
                return half
            return max(int((idx / (self.grid_size - 1) - 0.25) * self.whole_map_size), 0)
        regions = []
        for i in range(self.grid_points):
            x1, y1 = start(i // self.grid_size), start(i % self.grid_size)
            regions.append((x1, y1, x1 + half, y1 + half))
        return regions

    def _grid_factors(self, device) -> Tuple[Tensor, Tensor]:
        """Per point, the weight of the box's x1 (y1) in the point's x (y): (G,), (G,)."""
        idx = torch.arange(self.grid_points, device=device)
        return (1 - (idx // self.grid_size).float() / (self.grid_size - 1),
                1 - (idx % self.grid_size).float() / (self.grid_size - 1))

    def get_targets(self, sampling_results: Sequence, rcnn_train_cfg: dict) -> Tensor:
        """Heatmap targets of all positives: (P, G, 28, 28) in {0, 1}.

        Each positive RoI is enlarged 2x about its centre to the 56x56 map; grid point ``j`` of its gt
        box (``fx * x1 + (1 - fx) * x2``, likewise y) falls on map cell (cx, cy) (truncated towards 0);
        the cells within ``pos_radius`` (Euclidean, in cells) are 1. RoIs whose enlarged side is at most
        ``grid_size`` pixels get no positive cell. Each point's 28x28 sub-region is cut out.
        """
        pos = torch.cat([res.pos_bboxes for res in sampling_results]).float()
        gt = torch.cat([res.pos_gt_bboxes for res in sampling_results]).float()
        radius = int(rcnn_train_cfg['pos_radius'])
        size = self.whole_map_size
        wh = pos[:, 2:] - pos[:, :2]
        big = torch.cat([pos[:, :2] - wh / 2, pos[:, 2:] + wh / 2], dim=1)  # (P, 4) enlarged RoI
        bw, bh = (big[:, 2] - big[:, 0])[:, None], (big[:, 3] - big[:, 1])[:, None]
        fx, fy = self._grid_factors(pos.device)
        px = fx * gt[:, :1] + (1 - fx) * gt[:, 2:3]  # (P, G)
        py = fy * gt[:, 1:2] + (1 - fy) * gt[:, 3:4]
        cx = torch.trunc((px - big[:, :1]) / bw * size)
        cy = torch.trunc((py - big[:, 1:2]) / bh * size)
        cells = torch.arange(size, device=pos.device, dtype=torch.float32)
        d2 = (cells[None, None, None, :] - cx[..., None, None]) ** 2 + \
            (cells[None, None, :, None] - cy[..., None, None]) ** 2  # (P, G, y, x)
        valid = ((bw > self.grid_size) & (bh > self.grid_size))[..., None, None]  # (P, 1, 1, 1)
        targets = ((d2 <= radius ** 2) & valid).float()
        return torch.cat([targets[:, i:i + 1, y1:y2, x1:x2] for i, (x1, y1, x2, y2) in enumerate(self.sub_regions)],
                         dim=1)

    def loss(self, grid_pred: Dict[str, Tensor], sample_idx: Tensor, sampling_results: Sequence,
             rcnn_train_cfg: dict) -> dict:
        """``loss_grid`` = loss on the fused + loss on the unfused heatmaps of the positives
        ``sample_idx`` (indices into all positives of the batch, in sampling-result order)."""
        targets = self.get_targets(sampling_results, rcnn_train_cfg)[sample_idx]
        return dict(loss_grid=self.loss_grid(grid_pred['fused'], targets) +
                    self.loss_grid(grid_pred['unfused'], targets))

    def predict_by_feat(self, grid_preds: Dict[str, Tensor], results_list: List[InstanceData],
                        batch_img_metas: List[dict], rescale: bool = False) -> List[InstanceData]:
        """Replace every detection's box by the grid's: ``grid_preds['fused']`` (sum R_i, G, 28, 28) for
        the detections (R_i) of ``results_list`` in order; boxes in resized-image pixels in, original
        ones out with ``rescale``."""
        counts = [res.bboxes.size(0) for res in results_list]
        for res, pred, meta in zip(results_list, grid_preds['fused'].split(counts), batch_img_metas):
            if res.bboxes.size(0):
                res.bboxes = self._boxes_from_heatmaps(pred, res.bboxes, meta, rescale)
        return results_list

    def _boxes_from_heatmaps(self, grid_pred: Tensor, bboxes: Tensor, img_meta: dict, rescale: bool) -> Tensor:
        """(R, G, h, w) logits and the (R, 4) boxes they were pooled from -> (R, 4) boxes."""
        r, g, h, w = grid_pred.shape
        scores, position = grid_pred.sigmoid().flatten(2).max(dim=2)  # (R, G)
        regions = torch.tensor(self.sub_regions, device=grid_pred.device)
        xs = (position % w + regions[:, 0]).float()
        ys = (position // w + regions[:, 1]).float()
        wh = bboxes[:, 2:] - bboxes[:, :2]
        abs_x = (xs + 0.5) / w * wh[:, :1] + (bboxes[:, :1] - wh[:, :1] / 2)  # map over the 2x RoI
        abs_y = (ys + 0.5) / h * wh[:, 1:] + (bboxes[:, 1:2] - wh[:, 1:] / 2)
        k = self.grid_size
        col = torch.arange(self.grid_points, device=grid_pred.device) // k
        row = torch.arange(self.grid_points, device=grid_pred.device) % k

        def weighted(values: Tensor, mask: Tensor) -> Tensor:
            s = scores * mask
            return (values * s).sum(1) / s.sum(1)
        boxes = torch.stack([weighted(abs_x, col == 0), weighted(abs_y, row == 0),
                             weighted(abs_x, col == k - 1), weighted(abs_y, row == k - 1)], dim=1)
        img_h, img_w = img_meta['img_shape'][:2]
        boxes = torch.stack([boxes[:, 0].clamp(0, img_w), boxes[:, 1].clamp(0, img_h),
                             boxes[:, 2].clamp(0, img_w), boxes[:, 3].clamp(0, img_h)], dim=1)
        if rescale:
            boxes = boxes / boxes.new_tensor(img_meta['scale_factor']).repeat(2)
        return boxes

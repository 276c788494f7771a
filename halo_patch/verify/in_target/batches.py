"""A small training batch per task, laid out as Ultralytics' dataloaders give it to the loss."""

from __future__ import annotations

# boxes in normalised xywh, and the image each lies in
BOXES = [[0.3, 0.3, 0.2, 0.3], [0.7, 0.6, 0.3, 0.2], [0.5, 0.5, 0.4, 0.4], [0.2, 0.8, 0.1, 0.15], [0.6, 0.4, 0.3, 0.3]]
IMAGE_OF_BOX = [0, 0, 1, 1, 2]
# 3, not 2: the segment loss of some releases (8.4.0) reads a 2-image batch of prototypes as a (proto, semantic) pair
BATCH_SIZE = 3
MASK_RATIO = 4  # Ultralytics' default: masks at 1/4 of the image size


def make_batch(net, task, size, device):
    """{"img", "cls", ...} for a batch of BATCH_SIZE random size x size images."""
    import torch

    g = torch.Generator().manual_seed(0)
    img = torch.rand(BATCH_SIZE, 3, size, size, generator=g).to(device)
    head = net.model[-1]
    if task == "classify":
        nc = int(head.linear.out_features)
        return {"img": img, "cls": torch.tensor([k % nc for k in range(BATCH_SIZE)], device=device)}
    nc = int(head.nc)
    batch = {
        "img": img,
        "cls": torch.tensor([[float(k % 2 % nc)] for k in range(len(BOXES))], device=device),
        "bboxes": torch.tensor(BOXES, device=device),
        "batch_idx": torch.tensor([float(i) for i in IMAGE_OF_BOX], device=device),
        "resized_shape": [(size, size)] * BATCH_SIZE,  # read by the pose and obb losses of some releases
    }
    if task == "segment":
        batch["masks"] = overlap_masks(size // MASK_RATIO).to(device)
        batch["sem_masks"] = semantic_masks(batch["masks"], batch["cls"])  # read by heads with a semantic branch (YOLO26)
    elif task == "pose":
        batch["keypoints"] = keypoints(tuple(int(v) for v in head.kpt_shape)).to(device)
    elif task == "obb":
        batch["bboxes"] = torch.tensor([b + [0.3] for b in BOXES], device=device)  # xywh + angle (radians)
    return batch


def overlap_masks(side):
    """(B, side, side): pixel value k marks the k-th object of that image (Ultralytics' overlap_mask layout)."""
    import torch

    masks = torch.zeros(BATCH_SIZE, side, side)
    counts = [0] * BATCH_SIZE
    for (cx, cy, w, h), image in zip(BOXES, IMAGE_OF_BOX):
        counts[image] += 1
        x0, x1 = int((cx - w / 2) * side), int((cx + w / 2) * side)
        y0, y1 = int((cy - h / 2) * side), int((cy + h / 2) * side)
        masks[image, y0:y1, x0:x1] = counts[image]
    return masks


def semantic_masks(masks, cls):
    """(B, side, side) class index per pixel, from the overlap masks and each object's class."""
    sem = masks.new_zeros(masks.shape).long()
    for image in range(BATCH_SIZE):
        objects = [k for k, i in enumerate(IMAGE_OF_BOX) if i == image]
        for number, k in enumerate(objects, start=1):
            sem[image][masks[image] == number] = int(cls[k])
    return sem


def keypoints(kpt_shape):
    """(objects, K, D) normalised keypoints spread inside each box, all visible."""
    import torch

    n, dims = kpt_shape
    rows = []
    for cx, cy, w, h in BOXES:
        points = []
        for k in range(n):
            t = (k + 0.5) / n
            point = [cx - w / 2 + t * w, cy - h / 2 + t * h]
            points.append(point + [1.0] if dims == 3 else point)
        rows.append(points)
    return torch.tensor(rows)

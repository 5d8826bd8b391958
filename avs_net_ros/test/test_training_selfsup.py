"""Self-supervised training on frame triplets: view synthesis, losses, trainer, export."""

from avs_net_ros.core.contract import read_onnx_contract
from avs_net_ros.datasets.camera import normalise
from avs_net_ros.sim.rig import CameraPose, Intrinsics
from avs_net_ros.sim.scene import shoebox
from avs_net_ros.sim.world import SimulatedWorld
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
import torch
import torch.nn.functional as F
from torch.utils.data import default_collate

from training.selfsup.config import LossConfig, SelfSupConfig, SelfSupModelConfig
from training.selfsup.geometry import intrinsics_matrix, pose_matrix, reproject, warp
from training.selfsup.losses import min_reprojection, photometric_error

W, H, SUPERSAMPLE = 128, 96, 4


def _render(world, pose, size=(H, W)):
    """RGB in [0, 1] (1, 3, H, W) and z-depth (1, 1, H, W), box-filtered from 4x4 samples.

    Rendered finer and averaged, as a camera integrates over its pixels: point-sampled
    textures alias into patterns that move differently from the surface.
    """
    h, w = size
    rgb, depth, _ = world.render(pose, w * SUPERSAMPLE, h * SUPERSAMPLE)
    rgb = rgb.astype(np.float32).reshape(h, SUPERSAMPLE, w, SUPERSAMPLE, 3).mean((1, 3))
    depth = depth.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).mean((1, 3))
    return (torch.from_numpy(rgb / 255).permute(2, 0, 1)[None].float(),
            torch.from_numpy(depth)[None, None].float())


def _relative_pose(target: CameraPose, source: CameraPose):
    """Axis-angle and translation of the target-to-source transform, from world poses."""
    r_t, r_s = target.rotation(), source.rotation()
    rot = r_s.T @ r_t
    t = r_s.T @ (target.position - source.position)
    return (torch.tensor(Rotation.from_matrix(rot).as_rotvec()[None], dtype=torch.float32),
            torch.tensor(t[None], dtype=torch.float32))


def _camera():
    i = Intrinsics.from_fov(W, H, 90.0)
    n = normalise({'width': W, 'height': H, 'fx': i.fx, 'fy': i.fy, 'cx': i.cx, 'cy': i.cy})
    return intrinsics_matrix(torch.tensor([n]), H, W)


@pytest.fixture(scope='module')
def views():
    world = SimulatedWorld(shoebox(6.0, 4.0, 3.0, 'concrete', floor_material='linoleum',
                                   ceiling_material='ceiling_plaster'))
    target = CameraPose(1.5, 2.0, 1.2, 0.1, 0.02)
    source = CameraPose(1.8, 1.85, 1.2, 0.0, 0.0)
    return world, target, source


def test_warping_a_rendered_view_with_true_depth_and_pose_reconstructs_the_target(views):
    world, target_pose, source_pose = views
    target, depth = _render(world, target_pose)
    source, source_depth = _render(world, source_pose)
    k = _camera()
    pose = pose_matrix(*_relative_pose(target_pose, source_pose))
    grid, z = reproject(depth, pose, k)
    # Pixels seen by both cameras: inside the source image and not occluded there.
    seen = F.grid_sample(source_depth, grid, mode='nearest', align_corners=True)
    visible = (grid.abs() <= 1).all(-1)[:, None] & ((seen - z).abs() < 0.02 * z)
    assert visible.float().mean() > 0.6
    error = photometric_error(warp(source, depth, pose, k), target)[visible]
    unwarped = photometric_error(source, target)[visible]
    assert error.mean() < 0.005 and unwarped.mean() > 0.03
    # The inverse of the source-to-target motion (the pose network's previous-frame case)
    # is the same transform.
    inverse = pose_matrix(*_relative_pose(source_pose, target_pose), invert=True)
    assert torch.allclose(inverse, pose, atol=1e-5)
    # A wrong pose does not reconstruct it: the check can fail.
    wrong = pose_matrix(*_relative_pose(target_pose, CameraPose(1.8, 1.85, 1.2, 0.2, 0.0)))
    assert photometric_error(warp(source, depth, wrong, k), target)[visible].mean() > 0.02


def test_the_photometric_loss_leads_gradient_descent_to_the_true_pose(views):
    world, target_pose, source_pose = views
    target, depth = _render(world, target_pose)
    source, _ = _render(world, source_pose)
    k = _camera()
    true_rot, true_t = _relative_pose(target_pose, source_pose)
    # From no motion at all: the rotation needs a gradient at zero.
    rot = torch.zeros(1, 3, requires_grad=True)
    t = torch.zeros(1, 3, requires_grad=True)
    opt = torch.optim.Adam([rot, t], lr=0.01)
    for _ in range(120):
        opt.zero_grad()
        photometric_error(warp(source, depth, pose_matrix(rot, t), k), target).mean().backward()
        opt.step()
    assert torch.allclose(rot.detach(), true_rot, atol=0.01), (rot, true_rot)
    assert torch.allclose(t.detach(), true_t, atol=0.03), (t, true_t)


def test_normalised_depth_makes_the_loss_blind_to_the_disparity_level(views):
    from training.selfsup.losses import SelfSupervisedLoss
    world, target_pose, source_pose = views
    target, depth = _render(world, target_pose)
    source, _ = _render(world, source_pose)
    k = _camera()
    pose = pose_matrix(*_relative_pose(target_pose, source_pose))
    lo, hi = 1 / 12.0, 1 / 0.1

    def sigmoid_for(disparity):
        return (disparity - lo) / (hi - lo)

    # The true disparity and twice it (both inside the sigmoid's range): one scene, one scale.
    level1, level2 = sigmoid_for(1 / depth), sigmoid_for(2 / depth)
    assert 0 < level1.min() and level2.max() < 1
    for normalised in (False, True):
        loss = SelfSupervisedLoss(0.1, 12.0, smoothness_weight=0.0, automask=False,
                                  normalise_depth=normalised)
        a = loss(target, [source], [pose], [level1], k)['photometric']
        b = loss(target, [source], [pose], [level2], k)['photometric']
        if normalised:
            # Warped with depth / mean depth, the level cancels: no drift has any pull.
            assert torch.isclose(a, b, rtol=1e-4), (a, b)
        else:
            # Without it only the true level (for this translation) reconstructs the target.
            assert b > 2 * a, (a, b)


def test_automask_removes_the_pixels_of_a_static_frame(views):
    world, target_pose, source_pose = views
    target, depth = _render(world, target_pose)
    source, _ = _render(world, source_pose)
    k = _camera()
    torch.manual_seed(0)
    motion = pose_matrix(*_relative_pose(target_pose, source_pose))
    # The camera stood still: both "sources" are the target frame itself, and the network
    # predicted some motion. Every pixel is explained by the unwarped frame: all masked out.
    static = [target.clone(), target.clone()]
    warped = [warp(s, depth, motion, k) for s in static]
    terms = min_reprojection(target, static, warped)
    assert terms.automask.float().mean() < 0.01
    assert terms.loss.abs().max() < 1e-4
    # The camera moved and the warp is right: most pixels are kept and trained.
    moving = [source, source]
    terms = min_reprojection(target, moving, [warp(source, depth, motion, k)] * 2)
    assert terms.automask.float().mean() > 0.6
    # Without auto-masking the static frame's pixels would all be trained.
    terms = min_reprojection(target, static, warped, automask=False)
    assert terms.automask.all() and terms.loss.mean() > 0.01


def _tiny_config(tmp_path, **kw) -> SelfSupConfig:
    model = SelfSupModelConfig(image_size=(64, 96), backbone='resnet10t', features=16,
                               pose_backbone='resnet10t', pose_features=32, min_depth=0.1,
                               max_depth=12.0)
    from training.config import OptimConfig
    values = {'model': model, 'optim': OptimConfig(lr=1e-3, weight_decay=0.0, clip_grad=0.0),
              'epochs': 50, 'batch_size': 3, 'out_dir': str(tmp_path / 'run'), 'log_every': 1,
              'augment': False, 'threads': 1, 'loss': LossConfig()}
    values.update(kw)
    return SelfSupConfig(**values)


@pytest.fixture(scope='module')
def triplets(tmp_path_factory):
    """Build simulated BV1 frames driven by a robot, read as training reads them."""
    from avs_net_ros.datasets.generate import generate
    from avs_net_ros.sim.motion import RobotMotion
    from training.data import build_dataset
    root = str(tmp_path_factory.mktemp('sim') / 'bv1')
    generate(root, 'bv1', {'train': 10, 'val': 4, 'test': 0}, seed=5, size=(192, 128),
             frames_per_location=10, progress=False, motion=RobotMotion())
    train = build_dataset({'root': root, 'layout': 'bv1', 'split': 'train', 'triplets': True,
                           'triplet_interval': 3, 'cache': True}, (64, 96), 'train')
    val = build_dataset({'root': root, 'layout': 'bv1', 'split': 'val'}, (64, 96), 'val')
    return root, train, val


def test_triplet_samples_carry_the_intrinsics_of_their_location(triplets):
    _, train, _ = triplets
    assert len(train) == 4
    s = train[0]
    # The simulated camera: 90 degrees horizontal FOV, square pixels, centred.
    assert np.allclose(s['intrinsics'].numpy(), [0.5, 0.5 * 192 / 128, 0.5, 0.5], atol=1e-6)
    assert s['image_prev'].shape == s['image'].shape == (3, 64, 96)


def _rendered_triplets(world, n=2):
    """Triplet samples (64 x 96) of a camera driving forward and turning, from known poses."""
    from avs_net_ros.sim.rig import Intrinsics as Intr
    i = Intr.from_fov(96, 64, 90.0)
    intr = torch.tensor(normalise({'width': 96, 'height': 64, 'fx': i.fx, 'fy': i.fy,
                                   'cx': i.cx, 'cy': i.cy}))
    samples = []
    for x, y, yaw in ((1.5, 2.0, 0.1), (2.0, 1.5, 0.6))[:n]:
        step = np.array([np.cos(yaw), np.sin(yaw)]) * 0.25
        poses = [CameraPose(x + k * step[0], y + k * step[1], 1.2, yaw + 0.05 * k, 0.0)
                 for k in (-1, 0, 1)]
        frames = [_render(world, p, (64, 96))[0][0] for p in poses]
        samples.append({'image_prev': frames[0], 'image': frames[1], 'image_next': frames[2],
                        'intrinsics': intr})
    return samples


@pytest.mark.slow
def test_loss_decreases_on_a_fixed_triplet_batch(tmp_path, views):
    from training.selfsup.train import SelfSupervisedTrainer
    samples = _rendered_triplets(views[0])
    trainer = SelfSupervisedTrainer(_tiny_config(tmp_path, batch_size=2), samples,
                                    progress=False)
    batch = default_collate(samples)
    losses = [trainer.train_step(batch) for _ in range(8)]
    assert sum(losses[-2:]) / 2 < 0.85 * losses[0], losses
    assert set(trainer.scalars) == {'photometric', 'smoothness', 'automask'}
    assert 0.3 < trainer.scalars['automask'] <= 1


def test_supervised_batches_are_refused_with_the_reason(tmp_path, triplets):
    from training.selfsup.train import SelfSupervisedTrainer
    _, train, val = triplets
    trainer = SelfSupervisedTrainer(_tiny_config(tmp_path), train, progress=False)
    with pytest.raises(KeyError, match='triplets: true'):
        trainer.loss(default_collate([val[0]]))


@pytest.mark.slow
def test_resume_is_exact_and_validation_scores_depth(tmp_path, triplets):
    from training.selfsup.train import SelfSupervisedTrainer
    _, train, val = triplets
    cfg = _tiny_config(tmp_path, epochs=2, batch_size=2, augment=True)
    a = SelfSupervisedTrainer(cfg, train, val, progress=False)
    it = iter(a.loader)
    a.train_step(next(it))
    a.save_checkpoint(str(tmp_path / 'mid.pt'))
    batch = next(it)
    # Steps draw auto-masking's tie-break noise from the global RNG, which a new trainer
    # reseeds: take a's step before b exists, then b's from the restored state.
    expected = a.train_step(batch)
    b = SelfSupervisedTrainer(cfg, train, val, progress=False)
    b.load_checkpoint(str(tmp_path / 'mid.pt'))
    assert b.train_step(batch) == expected
    metrics = a.fit()
    assert {'abs_rel', 'delta1'} <= set(metrics) and np.isfinite(metrics['abs_rel'])
    assert (tmp_path / 'run' / 'best.pt').is_file() and (tmp_path / 'run' / 'last.pt').is_file()


def test_export_validate_and_run_in_the_pipeline(tmp_path, model_set, capsys):
    from dataclasses import asdict
    from avs_net_ros.runtime.pipeline import MetricDepthPipeline
    from avs_net_ros.tools.validate_model import main as validate
    from training.models.monodepth import SelfSupervisedNet
    from training.selfsup.export import export_disparity, load_disparity_net
    cfg = _tiny_config(tmp_path)
    ckpt = tmp_path / 'best.pt'  # what the trainer writes: config and weights
    torch.save({'config': asdict(cfg), 'model': SelfSupervisedNet(cfg.model).state_dict()},
               ckpt)
    depth_net, mcfg = load_disparity_net(str(ckpt))
    path = str(tmp_path / 'selfsup.onnx')
    export_disparity(depth_net, mcfg, path)  # fails on a parity or contract error
    contract = read_onnx_contract(path)
    assert contract.kind == 'relative' and contract.relative_output == 'disparity'
    assert contract.image_size == (64, 96)
    assert validate([path, '--run', '--providers', 'cpu']) == 0
    assert 'disparity' in capsys.readouterr().out
    pipe = MetricDepthPipeline(model_set['v'], path, intra_op_threads=2)
    rgb = np.random.default_rng(1).integers(0, 256, (48, 80, 3), dtype=np.uint8)
    res = pipe.infer(rgb)
    raw = pipe.run_relative(rgb)
    assert raw.shape == (64, 96) and 1 / 12.0 <= raw.min() and raw.max() <= 10.0
    # Declared disparity: the pipeline inverted it before scaling.
    assert np.allclose(res.relative, 1 / pipe.to_camera(raw, (48, 80)), rtol=1e-5)
    assert np.isclose(np.nanmedian(res.metric), np.nanmedian(res.pseudo_dense), rtol=0.05)
    bad = tmp_path / 'supervised.pt'
    torch.save({'config': {'model': {'variant': 'relative'}}, 'model': {}}, bad)
    with pytest.raises(ValueError, match='not a self-supervised checkpoint'):
        load_disparity_net(str(bad))


def test_evaluate_scores_another_set_given_by_set_overrides(tmp_path, triplets, capsys):
    from dataclasses import asdict
    import json
    import yaml
    from training.models.monodepth import SelfSupervisedNet
    from training.selfsup.evaluate import FLAT, main as evaluate_main
    root, _, _ = triplets
    cfg = _tiny_config(tmp_path)
    ckpt = tmp_path / 'best.pt'
    torch.save({'config': asdict(cfg), 'model': SelfSupervisedNet(cfg.model).state_dict()},
               ckpt)
    data = json.loads(json.dumps(asdict(cfg)))  # tuples -> lists, for YAML
    data['data'] = {'val': {'root': str(tmp_path / 'elsewhere'), 'layout': 'bv1',
                            'split': 'val'}}
    config = tmp_path / 'config.yaml'
    config.write_text(yaml.safe_dump(data))
    args = ['--config', str(config), '--checkpoint', str(ckpt),
            '--set', f'data.val.root={root}']
    evaluate_main(args)
    full = capsys.readouterr().out
    assert '(0 < gt <= 12 m)' in full and FLAT in full and str(ckpt) in full
    evaluate_main(args + ['--set', 'data.val.eval_max_depth=1.5'])
    near = capsys.readouterr().out
    assert '(0 < gt <= 1.5 m)' in near
    assert near.splitlines()[-1] != full.splitlines()[-1]  # fewer pixels scored


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import os
    import pathlib
    import torch.distributed as dist
    from training.selfsup.train import SelfSupervisedTrainer
    from training.train import setup_distributed
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    info = setup_distributed('cpu')
    samples = _rendered_triplets(SimulatedWorld(shoebox(6.0, 4.0, 3.0, 'concrete')))
    cfg = _tiny_config(pathlib.Path(out_dir), batch_size=2, epochs=2, augment=True)
    trainer = SelfSupervisedTrainer(cfg, samples, device='cpu', dist_info=info, progress=False)
    trainer.fit()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    torch.save({'params': flat, 'step': trainer.step}, os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_cpu_processes_train_the_same_networks(tmp_path):
    import torch.multiprocessing as mp
    from test_training_ddp import _free_port
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = torch.load(tmp_path / 'rank0.pt'), torch.load(tmp_path / 'rank1.pt')
    assert r0['step'] == r1['step'] == 2  # 2 triplets, 1 per rank per step, 2 epochs
    assert torch.equal(r0['params'], r1['params'])
    state = torch.load(tmp_path / 'run' / 'last.pt', weights_only=False)
    assert any(k.startswith('pose.') for k in state['model'])
    assert not any(k.startswith('module.') for k in state['model'])


def test_a_flip_mirrors_the_principal_point_with_the_frames():
    from training.datasets.augment import augment_batch
    g = torch.Generator().manual_seed(0)
    image = torch.rand(16, 3, 8, 12, generator=g)
    batch = {'image': image, 'image_prev': image.clone(), 'image_next': image.clone(),
             'intrinsics': torch.tensor([[0.5, 0.75, 0.3, 0.5]] * 16)}
    out = augment_batch(batch, torch.Generator().manual_seed(1))
    flipped = out['intrinsics'][:, 2] > 0.5
    assert 0 < int(flipped.sum()) < 16
    assert torch.allclose(out['intrinsics'][flipped, 2], torch.tensor(0.7))
    assert torch.equal(out['intrinsics'][~flipped], batch['intrinsics'][~flipped])
    assert torch.equal(out['intrinsics'][:, [0, 1, 3]], batch['intrinsics'][:, [0, 1, 3]])
    # Frames and intrinsics flip together (jitter aside: compare the images' column order).
    for i in range(16):
        mirrored = out['image'][i].flip(-1)
        near = (mirrored - image[i]).abs().mean() < (out['image'][i] - image[i]).abs().mean()
        assert bool(near) == bool(flipped[i])

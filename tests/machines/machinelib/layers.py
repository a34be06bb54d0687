"""Derived images (snapshots of a running target, kept as its overlay's upper layer on top of the layers it ran
on) and the lower layers an image spec (`base` or a derived image) boots on."""

import contextlib
import json
import os
import time
from pathlib import Path

from . import common
from .common import DERIVED_RE, Fail, flock, log, require_root, run, safe_rmtree, write_file
from .image import current_image, derived_images, images_lock
from .state import all_states, running_state


def check_derived_name(image):
    if not DERIVED_RE.fullmatch(image or ""):
        raise Fail(f"invalid derived image name {image!r}: use derived-[a-z0-9-]{{1,64}}")


def image_layers(spec):
    """The base image and the overlay's lower layers (top first) for SPEC: `base` (the current built image)
    or the name of a derived image. Call with the images lock held."""
    if spec in (None, "", "base"):
        image = current_image()
        return image, [image / "rootfs"]
    check_derived_name(spec)
    try:
        manifest = json.loads((common.CACHE / spec / "manifest.json").read_text())
    except (OSError, ValueError):
        raise Fail(f"no derived image {spec} in {common.CACHE}")
    layers = [Path(p) for p in manifest["layers"]]
    for layer in layers:
        if not layer.is_dir():
            raise Fail(f"derived image {spec} needs {layer}, which is gone; make the snapshot again")
    return Path(manifest["base"]), layers


def snapshot(name, image):
    """Keep what a running target changed (its overlay's upper layer) as derived image IMAGE, stacked on the
    layers the target runs on, so later targets boot with everything it had on disk."""
    require_root()
    check_derived_name(image)
    t0 = time.monotonic()
    with flock(common.RUN_DIR / ".locks" / name):
        st = running_state(name)
        dest = common.CACHE / image
        if dest.exists():
            raise Fail(f"derived image {image} already exists")
        tmp = common.CACHE / f".snap-{image}-{os.getpid()}"
        safe_rmtree(tmp)
        tmp.mkdir(parents=True)
        try:
            run(["sync"], capture=True)
            # -a keeps owners, modes, xattrs (overlayfs' opaque-directory marks) and the whiteouts (0/0
            # character devices) that hide the lower layers' deleted files.
            run(["cp", "-a", str(Path(st["overlay"]) / "upper"), str(tmp / "upper")], capture=True)
            lower = st.get("layers") or [str(Path(st["image"]) / "rootfs")]
            write_file(tmp / "manifest.json", json.dumps({
                "base": st["image"], "layers": [str(dest / "upper"), *lower], "from": name,
                "made": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }, indent=2) + "\n")
            with images_lock():
                os.rename(tmp, dest)
        except BaseException:
            safe_rmtree(tmp)
            raise
    log(f"{name} kept as {image} in {time.monotonic() - t0:.1f}s")
    print(dest)


def forget(image):
    """Delete a derived image unless a target runs on it or another derived image stands on it."""
    require_root()
    check_derived_name(image)
    dest = common.CACHE / image
    with images_lock():
        if not dest.exists():
            return False
        upper = str(dest / "upper")
        users = [st["name"] for st in all_states() if upper in st.get("layers", [])]
        users += [d.name for d in derived_images()
                  if d != dest and upper in json.loads((d / "manifest.json").read_text())["layers"]]
        if users:
            raise Fail(f"{image} is in use by {', '.join(users)}")
        safe_rmtree(dest)
    log(f"forgot {image}")
    return True


def forget_unused(keep=()):
    """Delete every derived image no target runs on, but those in KEEP (newest first, so chains go top down)."""
    for d in reversed(derived_images()):
        if d.name not in keep:
            with contextlib.suppress(Fail):
                forget(d.name)

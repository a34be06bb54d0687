"""The base image in CACHE: the test key, the image hash, which images exist and which are in use, and the
build (debootstrap, the local apt repository, the image's configuration)."""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from . import common
from .common import (BASE_PACKAGES, BUILD_VERSION, CHROOT_ENV, IMAGE_HOSTNAME, MASKED_UNITS, PACKAGES_FILE,
                     PASSWORD, SUITE, USER, Fail, flock, log, require_root, run, safe_rmtree, unmount_all, write_file)
from .state import all_states


def package_list_text():
    try:
        return PACKAGES_FILE.read_text()
    except OSError as e:
        raise Fail(f"cannot read {PACKAGES_FILE}: {e.strerror}")


def parse_packages(text):
    pkgs = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pkgs.append(line)
    return pkgs


def key_path():
    return common.CACHE / "id_ed25519"


def ensure_key():
    """The test key lives in the cache, not in the image dir, so it survives
    rebuilds and instance configs written by Molecule stay valid."""
    key = key_path()
    if not key.exists():
        common.CACHE.mkdir(parents=True, exist_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "coursevm-test", "-f", key], capture=True)
        log(f"generated test key {key}")
    os.chmod(key, 0o600)
    return Path(str(key) + ".pub").read_text().strip()


def image_hash(pubkey, packages_text):
    """packages.txt + BUILD_VERSION decide the image. The public key is mixed
    in too: if someone deletes the key, the next build makes a new one and the
    image must be rebuilt, or nobody could log in."""
    h = hashlib.sha256()
    for part in (BUILD_VERSION, packages_text, pubkey):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def images_for(digest):
    """Complete images for these inputs, oldest first. Several can exist after
    `build --force` while targets still run on the older one: an image in use
    is never renamed or deleted, because it is a live overlay's lower layer."""
    return sorted(p for p in common.CACHE.glob(f"image-{digest}-*") if (p / "rootfs").is_dir())


def current_image():
    """The newest image for the current inputs, or a clear error. Call with
    the images lock held (see start)."""
    pub = Path(str(key_path()) + ".pub")
    if not pub.exists():
        raise Fail(f"no test key in {common.CACHE}; run `machines.py build` first")
    images = images_for(image_hash(pub.read_text().strip(), package_list_text()))
    if not images:
        raise Fail(f"no image for the current packages.txt in {common.CACHE}; run `machines.py build` first")
    return images[-1]


def images_lock(shared=False):
    """Held (shared) by `start` from choosing an image until its state file
    names it, and (exclusive) by `build` while it adds or deletes images, so
    a build never deletes an image a target is just starting on."""
    return flock(common.CACHE / "images.lock", shared=shared)


def host_mirror():
    """The Debian mirror this host already uses for bookworm (so builds work
    behind whatever mirror/proxy this machine is set up with)."""
    if os.environ.get("COURSEVM_DEBIAN_MIRROR"):
        return os.environ["COURSEVM_DEBIAN_MIRROR"], "$COURSEVM_DEBIAN_MIRROR"
    files = [Path("/etc/apt/sources.list")]
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        files += sorted(d.iterdir())
    for f in files:
        if not f.is_file():
            continue
        text = f.read_text(errors="replace")
        if f.suffix == ".list" or f.name == "sources.list":
            for line in text.splitlines():
                line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(line) >= 3 and line[0] == "deb" and line[2] == SUITE:
                    return line[1], str(f)
        elif f.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", text):
                fields, key = {}, None
                for line in stanza.splitlines():
                    if line.startswith("#"):
                        continue
                    if line[:1].isspace() and key:
                        fields[key] += " " + line.strip()
                    elif ":" in line:
                        key, val = line.split(":", 1)
                        key = key.strip().lower()
                        fields[key] = val.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" in fields.get("types", "").split() and SUITE in fields.get("suites", "").split():
                    return fields.get("uris", "").split()[0], str(f)
    raise Fail(f"no '{SUITE}' source in /etc/apt; set COURSEVM_DEBIAN_MIRROR to a Debian mirror URL")


def images_in_use():
    used = {st.get("image") for st in all_states()}
    for d in derived_images():
        with contextlib.suppress(OSError, ValueError, KeyError):
            used.add(json.loads((d / "manifest.json").read_text())["base"])
    return used


def derived_images():
    return sorted(p for p in common.CACHE.glob("derived-*") if (p / "manifest.json").is_file())


def build(force):
    require_root()
    for tool in ("debootstrap", "apt-ftparchive", "ssh-keygen"):
        if not shutil.which(tool):
            raise Fail(f"{tool} not found; apt-get install debootstrap apt-utils openssh-client")
    t0 = time.monotonic()
    pubkey = ensure_key()
    # Read once: the file may be edited while a build runs, and the image
    # must contain exactly what its hash says.
    packages_text = package_list_text()
    pkgs = parse_packages(packages_text)
    digest = image_hash(pubkey, packages_text)
    with flock(common.CACHE / "build.lock", inherit=True):
        existing = images_for(digest)
        if existing and not force:
            with images_lock():
                remove_old_images(keep=existing[-1])
            print(f"image up to date: {existing[-1]} ({time.monotonic() - t0:.1f}s)")
            return
        # Anything named .build-* is a build that was killed: never trusted, only removed.
        for stale in common.CACHE.glob(".build-*"):
            log(f"removing unfinished build {stale}")
            safe_rmtree(stale)
        tmp = common.CACHE / f".build-{digest}-{os.getpid()}"
        tmp.mkdir(parents=True)
        try:
            with open(tmp / "build.log", "w") as logfile:
                build_rootfs(tmp / "rootfs", pubkey, pkgs, logfile, t0)
            write_file(tmp / "manifest.json", json.dumps({
                "hash": digest, "build_version": BUILD_VERSION, "suite": SUITE,
                "packages": pkgs,
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }, indent=2) + "\n")
            # The timestamp keeps names unique (--force) and sorts newest last.
            image = common.CACHE / f"image-{digest}-{time.strftime('%Y%m%dT%H%M%S')}"
            with images_lock():
                # The rename is the commit point: an image-* dir is complete by construction.
                os.rename(tmp, image)
                fd = os.open(common.CACHE, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)
                remove_old_images(keep=image)
        except BaseException:
            # Leave the log for a post-mortem but make sure nothing stays mounted.
            unmount_all(tmp)
            raise
    print(f"built {image} in {time.monotonic() - t0:.0f}s")


def remove_old_images(keep):
    """Call with the images lock held."""
    in_use = images_in_use()
    for old in common.CACHE.glob("image-*"):
        if old != keep and str(old) not in in_use:
            log(f"removing old image {old}")
            safe_rmtree(old)


def build_rootfs(root, pubkey, pkgs, logfile, t0):
    def step(msg):
        log(f"[{time.monotonic() - t0:5.0f}s] {msg}")

    def chroot(*cmd, **kw):
        return run(["chroot", root, *cmd], env=CHROOT_ENV, logfile=logfile, **kw)

    mirror, where = host_mirror()
    step(f"debootstrap {SUITE} from {mirror} (mirror taken from {where}); log: {logfile.name}")
    # Keep downloaded .debs across rebuilds; debootstrap verifies them against the Release file.
    debcache = common.CACHE / "debootstrap-cache"
    debcache.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES),
         f"--cache-dir={debcache}", SUITE, root, mirror], logfile=logfile)

    with chroot_mounts(root):
        step(f"downloading {' '.join(pkgs)} with their dependencies")
        chroot("apt-get", "update")
        # --reinstall makes apt fetch a listed package even if the base system
        # already has it, so every line of packages.txt ends up in the repo.
        chroot("apt-get", "install", "-y", "--download-only", "--reinstall", *pkgs)

        step("creating the local apt repository /srv/localrepo")
        repo = root / "srv/localrepo"
        repo.mkdir(parents=True)
        os.chmod(repo, 0o755)  # apt reads file: repos as the _apt user
        debs = sorted((root / "var/cache/apt/archives").glob("*.deb"))
        for deb in debs:
            shutil.copy2(deb, repo)
        with open(repo / "Packages", "w") as f:
            run(["apt-ftparchive", "packages", "."], cwd=repo, logfile=f)
        release = run(["apt-ftparchive", "release", "."], cwd=repo, capture=True).stdout
        write_file(repo / "Release", release)
        size = sum(d.stat().st_size for d in debs) / 2**20
        step(f"  {len(debs)} packages, {size:.0f} MB")

        # From here on the image only knows the local repo: a role that needs a
        # package missing from packages.txt fails in tests instead of silently
        # reaching for a mirror the targets cannot reach.
        (root / "etc/apt/sources.list").unlink(missing_ok=True)
        for f in (root / "etc/apt/sources.list.d").glob("*"):
            f.unlink()
        write_file(root / "etc/apt/sources.list.d/localrepo.list",
                   "# Test image: packages from tests/machines/packages.txt only.\n"
                   "deb [trusted=yes] file:/srv/localrepo ./\n")
        for f in (root / "var/lib/apt/lists").glob("*"):
            if f.is_file():
                f.unlink()
        chroot("apt-get", "update")
        # Self-check: everything in packages.txt installs from the local repo alone.
        chroot("apt-get", "install", "--dry-run", "-y", *pkgs)
        chroot("apt-get", "clean")

        step("configuring the image (user, ssh, units, locale)")
        configure_image(root, pubkey, chroot)
    step("rootfs done")


@contextlib.contextmanager
def chroot_mounts(root):
    """/proc for the chroot steps (apt and systemctl look at it). Always unmounted
    again; a killed build's leftover mount is handled by safe_rmtree."""
    run(["mount", "-t", "proc", "proc", root / "proc"])
    try:
        yield
    finally:
        unmount_all(root / "proc")


def configure_image(root, pubkey, chroot):
    # Empty machine-id: every target boots with a fresh transient id, as a
    # cloned VM would after first boot; a fixed id would be shared by all.
    write_file(root / "etc/machine-id", "", 0o444)
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    # An empty resolv.conf (not a symlink): targets have no DNS, and lookups
    # must fail at once instead of timing out against a copied host resolver.
    rc = root / "etc/resolv.conf"
    if rc.is_symlink() or rc.exists():
        rc.unlink()
    write_file(rc, "")
    # The hostname must resolve locally, or Ansible's fact gathering waits
    # ~10 s on DNS. `start` rewrites both files per target.
    write_file(root / "etc/hostname", IMAGE_HOSTNAME + "\n")
    write_file(root / "etc/hosts", hosts_file(IMAGE_HOSTNAME))

    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    chroot("systemctl", "enable", "ssh.service")

    # en_US.UTF-8 because Debian's ssh client forwards LANG (SendEnv LANG LC_*);
    # without it every remote Python/Perl warns about the locale.
    lg = root / "etc/locale.gen"
    lg.write_text(lg.read_text().replace("# en_US.UTF-8 UTF-8", "en_US.UTF-8 UTF-8"))
    chroot("locale-gen")
    write_file(root / "etc/default/locale", "LANG=C.UTF-8\n")

    chroot("useradd", "--create-home", "--shell", "/bin/bash", "--user-group", USER)
    subprocess.run(["chroot", str(root), "chpasswd"], input=f"{USER}:{PASSWORD}\n", text=True,
                   env=CHROOT_ENV, check=True, stdout=subprocess.DEVNULL)
    write_file(root / f"etc/sudoers.d/{USER}", f"{USER} ALL=(ALL) NOPASSWD:ALL\n", 0o440)
    home = root / "home" / USER
    uid, gid = home.stat().st_uid, home.stat().st_gid
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    write_file(ssh_dir / "authorized_keys", pubkey + "\n", 0o600)
    for p in (ssh_dir, ssh_dir / "authorized_keys"):
        os.chown(p, uid, gid)

    # Host keys once at build time: every target shares them, which is fine
    # for throw-away test machines and saves key generation at each boot.
    if not list((root / "etc/ssh").glob("ssh_host_*_key")):
        chroot("ssh-keygen", "-A")
    # PasswordAuthentication stays at Debian's default (yes) on purpose: the
    # roles under test are expected to turn it off.


def hosts_file(hostname):
    return (f"127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n"
            "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
            "ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n")

"""Make the dashboard `asv publish` wrote browsable offline.

asv 0.6.6's index.html loads jQuery, flot, bootstrap, stupidtable and blueimp-md5 from CDNs, so
without a network the page stops at "external (JavaScript) dependencies failed to load". This
copies the unmodified libraries kept in ``benchmarks/html_vendor/`` (MIT-licensed, their
licences beside them) into ``<html_dir>/vendor/`` and points index.html at them. Run it after
every ``asv publish`` (publish rewrites the folder): ``python _offline_html.py`` from
``benchmarks/``. An external script or stylesheet it does not know is an error (exit 1), so a
new asv version cannot silently bring a CDN link back.

Only the ``__main__`` block acts: asv imports every module of the benchmark folder.
"""

import base64
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENDOR = HERE / "html_vendor"

# the CDN address asv 0.6.6 writes -> the local copy (same version, except stupidtable: the
# package registry has only 1.1.3 of it, whose sortable-table API asv uses unchanged)
LOCAL = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery-3.3.1.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js":
        "jquery.flot.time.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js":
        "jquery.flot.selection.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js":
        "jquery.flot.categories.js",
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js":
        "jquery.flot.orderBars.js",
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js":
        "stupidtable.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": "md5.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": "bootstrap.min.js",
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css":
        "bootstrap.min.css",
}
EXTERNAL = re.compile(r'<(?:script|link)\b[^>]*?(?:src|href)="(https?://[^"]+)"')


def integrity(path: Path) -> str:
    """Subresource-integrity value of a file: ``sha384-`` + base64 of its SHA-384 digest."""
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


def localise(html: str) -> tuple[str, list[str]]:
    """``html`` with every known CDN address replaced by ``vendor/<file>`` and the tag's
    integrity hash by the local file's (the CDN's minified builds differ from the registry
    packages' files), and the external script or stylesheet addresses left unknown."""
    unknown = [url for url in EXTERNAL.findall(html) if url not in LOCAL]

    def tag(match: re.Match) -> str:
        url = match[2]
        if url not in LOCAL:
            return match[0]
        text = match[0].replace(f'"{url}"', f'"vendor/{LOCAL[url]}"')
        return re.sub(r'integrity="[^"]*"', f'integrity="{integrity(VENDOR / LOCAL[url])}"', text)

    tags = re.compile(r'<(script|link)\b[^>]*?(?:src|href)="(https?://[^"]+)"[^>]*>')
    return tags.sub(tag, html), unknown


def main(html_dir: Path) -> int:
    index = html_dir / "index.html"
    if not index.is_file():
        print(f"error: {index} not found: run `asv publish` first", file=sys.stderr)
        return 2
    shutil.copytree(VENDOR, html_dir / "vendor", dirs_exist_ok=True)
    text, unknown = localise(index.read_text())
    index.write_text(text)
    if unknown:
        print(f"error: external addresses without a local copy: {unknown}", file=sys.stderr)
        return 1
    print(f"{index}: {len(LOCAL)} libraries served from vendor/")
    return 0


if __name__ == "__main__":
    conf = json.loads(re.sub(r"^\s*//.*$", "", (HERE / "asv.conf.json").read_text(), flags=re.M))
    sys.exit(main((HERE / conf["html_dir"]).resolve()))

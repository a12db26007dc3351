#!/bin/bash
# dracut module: dumpsieve in the kdump initramfs (kdump-utils / kexec-tools,
# RHEL, Fedora, CentOS). Installs node, the self-contained dumpsieve bundle
# and dumpsieve-collector, so that /etc/kdump.conf can say
#
#   core_collector dumpsieve-collector -l --message-level 7 -d 31
#   dracut_args --add dumpsieve
#
# (or `core_collector dumpsieve filter ...` to run dumpsieve without the
# makedumpfile fallback). See docs/kdump.md.
#
# DUMPSIEVE_DIR: where the bundle is installed (default /usr/lib/dumpsieve).
# DUMPSIEVE_NODE: the node binary to copy (default: node on PATH).

dumpsieve_dir() {
    echo "${DUMPSIEVE_DIR:-/usr/lib/dumpsieve}"
}

dumpsieve_node() {
    if [[ -n ${DUMPSIEVE_NODE-} ]]; then
        echo "$DUMPSIEVE_NODE"
    else
        command -v node
    fi
}

# Only when asked for (dracut_args --add dumpsieve), and only if everything is there.
check() {
    local d
    d=$(dumpsieve_dir)
    [[ -x "$d/dumpsieve" && -f "$d/dumpsieve.mjs" ]] || {
        derror "dumpsieve: no bundle in $d (npm run bundle, then install it there)"
        return 1
    }
    [[ -x "$(dumpsieve_node)" ]] || {
        derror "dumpsieve: no node binary (set DUMPSIEVE_NODE)"
        return 1
    }
    return 255
}

depends() {
    return 0
}

install() {
    local d node f
    d=$(dumpsieve_dir)
    node=$(dumpsieve_node)
    # node and the shared libraries it links (libstdc++, libm, ...).
    inst_binary "$node" /usr/bin/node
    inst_simple "$d/dumpsieve.mjs" "$d/dumpsieve.mjs"
    # The modules dumpsieve.mjs loads as it needs them.
    for f in "$d"/lib/*.mjs; do
        inst_simple "$f" "$f"
    done
    inst_simple "$d/dumpsieve" "$d/dumpsieve"
    inst_simple "$d/VERSION" "$d/VERSION"
    ln_r "$d/dumpsieve" /usr/bin/dumpsieve
    inst_multiple readlink dirname
    if [[ -x "$d/dumpsieve-collector" ]]; then
        inst_simple "$d/dumpsieve-collector" "$d/dumpsieve-collector"
        ln_r "$d/dumpsieve-collector" /usr/bin/dumpsieve-collector
    fi
}

#!/bin/sh
# certbot deploy hook: copy renewed certificates where the dotbridge user can read them.
# Install: cp scripts/deploy/certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/dotbridge
# dotbridge notices the changed files and swaps the certificate without dropping connections.
set -eu
dest=/etc/dotbridge/tls
install -d -m 0750 -o root -g dotbridge "$dest"
install -m 0640 -o root -g dotbridge "$RENEWED_LINEAGE/fullchain.pem" "$dest/fullchain.pem"
install -m 0640 -o root -g dotbridge "$RENEWED_LINEAGE/privkey.pem" "$dest/privkey.pem"

# shellcheck shell=bash
# TLS material for the local stack: a private CA per server and leaf
# certificates signed by it. Sourced by deploy/local/stack.sh; needs log, die
# and apt_install from there. Everything is generated with openssl, once: a
# file is only (re)made when it is missing, no longer verifies against its CA
# or expires within TLS_RENEW_DAYS.
#
# Keys are unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY"): the form both
# Kafka's PEM key store and PostgreSQL read without a password.

TLS_CA_DAYS=3650
TLS_LEAF_DAYS=825
TLS_RENEW_DAYS=30

require_openssl() {
  command -v openssl >/dev/null 2>&1 || apt_install openssl
  command -v openssl >/dev/null 2>&1 || die "openssl not found (needed to generate TLS certificates)"
}

# True when $1 is a certificate that is still valid for TLS_RENEW_DAYS.
tls_cert_fresh() {
  [[ -s $1 ]] && openssl x509 -in "$1" -noout -checkend $((TLS_RENEW_DAYS * 86400)) >/dev/null 2>&1
}

# tls_ensure_ca DIR COMMON_NAME -> DIR/ca.pem, DIR/ca-key.pem
# A new CA invalidates every leaf signed by the old one, which
# tls_ensure_leaf then notices (they no longer verify) and remakes.
tls_ensure_ca() {
  local dir=$1 cn=$2
  if tls_cert_fresh "$dir/ca.pem" && [[ -s $dir/ca-key.pem ]]; then
    return 0
  fi
  log "tls: generating CA '$cn' in $dir"
  mkdir -p "$dir"
  chmod 0700 "$dir"
  (
    umask 077
    openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$TLS_CA_DAYS" \
      -subj "/O=session-fulfillment local stack/CN=$cn" \
      -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca-key.pem.tmp" -out "$dir/ca.pem.tmp" 2>/dev/null
  ) || die "tls: generating CA in $dir failed"
  mv "$dir/ca-key.pem.tmp" "$dir/ca-key.pem"
  chmod 0644 "$dir/ca.pem.tmp"
  mv "$dir/ca.pem.tmp" "$dir/ca.pem"
  rm -f "$dir/ca.srl"
}

# tls_ensure_leaf DIR NAME COMMON_NAME server|client [SUBJECT_ALT_NAMES]
#   -> DIR/NAME.pem (certificate), DIR/NAME-key.pem (key), signed by DIR/ca.pem.
tls_ensure_leaf() {
  local dir=$1 name=$2 cn=$3 kind=$4 san=${5:-}
  local cert="$dir/$name.pem" key="$dir/$name-key.pem"
  if tls_cert_fresh "$cert" && [[ -s $key ]] &&
    openssl verify -CAfile "$dir/ca.pem" "$cert" >/dev/null 2>&1 &&
    [[ $(openssl x509 -in "$cert" -noout -pubkey) == $(openssl pkey -in "$key" -pubout 2>/dev/null) ]]; then
    return 0
  fi
  log "tls: generating $kind certificate '$cn' ($dir/$name.pem)"
  local usage ext="$dir/$name.ext"
  case $kind in
    server) usage=serverAuth ;;
    client) usage=clientAuth ;;
    *) die "tls: unknown certificate kind '$kind'" ;;
  esac
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    if [[ -n $san ]]; then echo "subjectAltName=$san"; fi
  } >"$ext"
  (
    umask 077
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$key.tmp" 2>/dev/null &&
      openssl req -new -key "$key.tmp" -subj "/O=session-fulfillment local stack/CN=$cn" \
        -out "$dir/$name.csr" 2>/dev/null &&
      openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
        -CAcreateserial -CAserial "$dir/ca.srl" -sha256 -days "$TLS_LEAF_DAYS" \
        -extfile "$ext" -out "$cert.tmp" 2>/dev/null
  ) || die "tls: signing $dir/$name.pem failed"
  rm -f "$dir/$name.csr" "$ext"
  mv "$key.tmp" "$key"
  chmod 0644 "$cert.tmp"
  mv "$cert.tmp" "$cert"
}

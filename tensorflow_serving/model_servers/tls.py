"""gRPC server credentials from TensorFlow Serving's SSLConfig.

SSLConfig carries PEM *contents*: `server_key` and `server_cert` for the server,
`custom_ca` to verify client certificates against, and `client_verify` to require
them (mutual TLS). As in TF Serving, TLS applies to the gRPC API only.
"""

import grpc

from tensorflow_serving.model_servers import model_config


def _check_pem(text: str, field: str, kind: str) -> bytes:
  if "-----BEGIN" not in text or kind not in text:
    raise model_config.ConfigError(
        f"SSLConfig.{field} does not hold a PEM {kind.lower()}: put the PEM text itself in the "
        "config (not a file name)")
  return text.encode("utf-8")


def server_credentials(ssl_config) -> grpc.ServerCredentials:
  key = _check_pem(ssl_config.server_key, "server_key", "PRIVATE KEY")
  cert = _check_pem(ssl_config.server_cert, "server_cert", "CERTIFICATE")
  root = (_check_pem(ssl_config.custom_ca, "custom_ca", "CERTIFICATE")
          if ssl_config.custom_ca else None)
  return grpc.ssl_server_credentials([(key, cert)], root_certificates=root,
                                     require_client_auth=bool(ssl_config.client_verify))

"""gRPC over TLS and mutual TLS from --ssl_config_file, with certificates made by openssl."""

import os
import subprocess

from google.protobuf import text_format
import grpc
import numpy as np
import tensorflow as tf

from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc
from tensorflow_serving.model_servers import config_protos
from tensorflow_serving.model_servers import model_server_test_util as util


def _openssl(*args, cwd):
  subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=120)


def _make_ca(directory, name):
  _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
           "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)


def _make_cert(directory, ca, name, extensions):
  with open(os.path.join(directory, f"{name}.ext"), "w") as f:
    f.write(extensions)
  _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
           "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=directory)
  _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
           "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem",
           cwd=directory)


class TlsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tf.compat.v1.test.get_temp_dir()
    cls.pki = os.path.join(cls.root, "pki")
    os.makedirs(cls.pki)
    _make_ca(cls.pki, "ca")
    _make_ca(cls.pki, "other_ca")
    _make_cert(cls.pki, "ca", "localhost",
               "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _make_cert(cls.pki, "ca", "client", "extendedKeyUsage=clientAuth\n")
    cls.base_path = os.path.join(cls.root, "half_plus_two")
    util.export_half_plus_two(cls.base_path)
    cls.servers = []

  @classmethod
  def tearDownClass(cls):
    for server in cls.servers:
      server.stop()
    super().tearDownClass()

  @classmethod
  def _read(cls, name):
    with open(os.path.join(cls.pki, name), "rb") as f:
      return f.read()

  @classmethod
  def _credentials(cls, ca="ca.pem", client=True):
    if client:
      return grpc.ssl_channel_credentials(cls._read(ca), cls._read("client.key"),
                                          cls._read("client.pem"))
    return grpc.ssl_channel_credentials(cls._read(ca))

  @classmethod
  def _start(cls, client_verify):
    ssl_config = config_protos.SSLConfig(
        server_key=cls._read("localhost.key").decode(),
        server_cert=cls._read("localhost.pem").decode(),
        custom_ca=cls._read("ca.pem").decode(),
        client_verify=client_verify)
    path = os.path.join(cls.root, f"ssl_{client_verify}.config")
    with open(path, "w") as f:
      f.write(text_format.MessageToString(ssl_config))
    server = util.ServerProcess.start(cls.root, [
        "--model_name=half_plus_two", f"--model_base_path={cls.base_path}",
        f"--ssl_config_file={path}"], rest=False)
    cls.servers.append(server)
    server.channel_credentials = cls._credentials(client=client_verify)
    server.wait_until_available("half_plus_two")
    return server

  def _predict(self, channel):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half_plus_two"
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(np.array([1.0], np.float32)))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return tf.make_ndarray(stub.Predict(request, timeout=30).outputs["y"])

  def _assert_refused(self, channel):
    with self.assertRaises(grpc.RpcError) as raised:
      self._predict(channel)
    self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAVAILABLE)

  def test_tls(self):
    server = self._start(client_verify=False)
    with server.new_channel(self._credentials(client=False)) as channel:
      self.assertAllClose(self._predict(channel), [2.5])
    with server.new_channel(self._credentials(ca="other_ca.pem", client=False)) as channel:
      self._assert_refused(channel)  # The client does not trust the server's CA.
    with server.new_channel() as channel:
      self._assert_refused(channel)  # Plaintext to a TLS port.

  def test_mutual_tls(self):
    server = self._start(client_verify=True)
    with server.new_channel(self._credentials(client=True)) as channel:
      self.assertAllClose(self._predict(channel), [2.5])
    with server.new_channel(self._credentials(client=False)) as channel:
      self._assert_refused(channel)  # No client certificate.


if __name__ == "__main__":
  tf.test.main()

// Registers the TfServingRemotePredict op: a Predict call on a remote
// TensorFlow Serving model, made from inside a graph.
//
// The name, inputs, outputs and the first nine attrs are TensorFlow Serving's,
// so graphs and SavedModels move between this build and upstream's. The TLS,
// reconnection and retry attrs are additions; exporters strip attrs at their
// defaults, so graphs that leave them alone stay loadable by upstream's op.

#include <cstdint>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/framework/types.h"

// Upstream's flag, under upstream's name, defined here as upstream does so that
// every binary with the op has it. The default differs: numbers travel packed
// in tensor_content, which is smaller and faster to encode; any TensorFlow
// Serving decodes both. The kernel header declares it.
ABSL_FLAG(bool, remote_predict_op_use_tensor_content, true,
          "If true, TfServingRemotePredict sends numeric tensors packed in "
          "TensorProto.tensor_content; if false, in the typed repeated fields. "
          "The environment variable TF_SERVING_REMOTE_PREDICT_USE_TENSOR_CONTENT, "
          "when set, overrides it for the kernels built meanwhile.");

namespace tensorflow {
namespace {

using shape_inference::InferenceContext;
using shape_inference::ShapeHandle;

// Checks that the aliases input `aliases_name` names `expected` tensors when
// its size is known at graph-construction time. `values_name` is what the
// aliases pair up with, for the error message. Input aliases must be a vector,
// as upstream requires; output aliases only need the right element count, so
// graphs upstream accepts (e.g. a scalar alias for one output) load here too.
absl::Status CheckAliasCount(InferenceContext* c,
                             absl::string_view aliases_name,
                             absl::string_view values_name, int64_t expected,
                             bool require_vector) {
  std::vector<ShapeHandle> aliases;
  TF_RETURN_IF_ERROR(c->input(aliases_name, &aliases));
  ShapeHandle shape = aliases[0];
  if (require_vector) {
    TF_RETURN_IF_ERROR(c->WithRank(aliases[0], 1, &shape));
  }
  const int64_t alias_count = c->Value(c->NumElements(shape));
  if (alias_count != InferenceContext::kUnknownDim && alias_count != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", values_name, "' should be equal in length to '", aliases_name,
        "'. Length of '", values_name, "': ", expected, ", length of '",
        aliases_name, "': ", alias_count));
  }
  return absl::OkStatus();
}

absl::Status RemotePredictShape(InferenceContext* c) {
  std::vector<ShapeHandle> input_tensors;
  TF_RETURN_IF_ERROR(c->input("input_tensors", &input_tensors));
  TF_RETURN_IF_ERROR(CheckAliasCount(c, "input_tensor_aliases", "input_tensors",
                                     input_tensors.size(),
                                     /*require_vector=*/true));

  DataTypeVector output_types;
  TF_RETURN_IF_ERROR(c->GetAttr("output_types", &output_types));
  TF_RETURN_IF_ERROR(CheckAliasCount(c, "output_tensor_aliases", "output_types",
                                     output_types.size(),
                                     /*require_vector=*/false));

  TF_RETURN_IF_ERROR(c->set_output("status_code", {c->Scalar()}));
  TF_RETURN_IF_ERROR(c->set_output("status_error_message", {c->Scalar()}));
  // Output shapes are whatever the remote model returns.
  for (int i = 2; i < c->num_outputs(); ++i) {
    c->set_output(i, c->UnknownShape());
  }
  return absl::OkStatus();
}

}  // namespace

REGISTER_OP("TfServingRemotePredict")
    .Attr("T: list(type)")
    .Attr("target_address: string = ''")
    .Attr("model_name: string = ''")
    .Attr("model_version: int = -1")
    .Attr("fail_op_on_rpc_error: bool = true")
    .Attr("max_rpc_deadline_millis: int = 30000")
    .Attr("signature_name: string = 'serving_default'")
    .Attr("ssl_root_certs_file: string = ''")
    .Attr("ssl_client_cert_file: string = ''")
    .Attr("ssl_client_key_file: string = ''")
    .Attr("ssl_target_name_override: string = ''")
    .Attr("max_reconnect_backoff_millis: int = 1000")
    .Attr("retry_unavailable: bool = false")
    .Input("input_tensor_aliases: string")
    .Input("input_tensors: T")
    .Input("output_tensor_aliases: string")
    .Output("status_code: int32")
    .Output("status_error_message: string")
    .Output("output_tensors: output_types")
    .Attr("output_types: list(type)")
    .SetShapeFn(RemotePredictShape)
    .SetIsStateful()
    .SetIsDistributedCommunication()
    .Doc(R"doc(
Calls PredictionService/Predict on a remote TensorFlow Serving model.

The call is asynchronous: no executor thread waits for the reply.

target_address: gRPC target of the model server: `host:port`, or a gRPC URI such
  as `dns:///host:port` or `ipv4:10.0.0.1:8500,10.0.0.2:8500`; several
  addresses are balanced round-robin.
model_name: Name of the remote model.
model_version: Version to call; -1 (the default) lets the server choose its
  latest.
fail_op_on_rpc_error: If true, an RPC error fails the op. If false, the op
  succeeds, reports the error in `status_code` and `status_error_message`, and
  returns empty tensors in `output_tensors`.
max_rpc_deadline_millis: Upper bound on the RPC's deadline, in milliseconds. The
  RPC gets the smaller of this and the time left for the enclosing step, and is
  cancelled when the step is.
signature_name: Signature of the remote model to run.
ssl_root_certs_file: PEM file of root certificates that the server's
  certificate must chain to. Setting any ssl_* attr makes the channel use TLS
  (with gRPC's default roots when this one is empty).
ssl_client_cert_file: PEM certificate chain presented to the server for mutual
  TLS; needs ssl_client_key_file.
ssl_client_key_file: PEM private key of ssl_client_cert_file.
ssl_target_name_override: Host name to check the server's certificate against
  instead of the one in target_address (for tests and private CAs).
max_reconnect_backoff_millis: The longest wait, in milliseconds, between two
  attempts to reconnect to a target that is down; bounds how long calls keep
  failing after it is back.
retry_unavailable: If true, a call made while the target is unreachable waits
  for it, and a call failing with UNAVAILABLE is retried, both within the
  call's deadline (so a restart shorter than the deadline loses no call). If
  false (the default), such calls fail at once with UNAVAILABLE.
input_tensor_aliases: The remote signature's input aliases, one per tensor in
  `input_tensors`.
input_tensors: The tensors to send.
output_tensor_aliases: The remote signature's output aliases to fetch; the
  request's output_filter.
status_code: 0 on success, otherwise the RPC's error code (the numbers of
  tensorflow::error::Code, equal to gRPC's).
status_error_message: The RPC's error message, prefixed with the model and target
  it was for; empty on success.
output_tensors: The fetched tensors, in the order of `output_tensor_aliases`.
output_types: The dtypes of `output_tensors`; one per output alias.
)doc");

}  // namespace tensorflow

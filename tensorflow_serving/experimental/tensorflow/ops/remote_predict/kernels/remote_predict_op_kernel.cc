// Registers the TfServingRemotePredict CPU kernel with the gRPC stub. Linked
// into the op's .so and into binaries that run the op; the C++ tests link a
// stub of their own instead.

#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/remote_predict_op_kernel.h"

#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow_serving/experimental/tensorflow/ops/remote_predict/kernels/prediction_service_grpc.h"

namespace tensorflow {
namespace serving {

REGISTER_KERNEL_BUILDER(Name("TfServingRemotePredict").Device(DEVICE_CPU),
                        RemotePredictOp<PredictionServiceGrpc>);

}  // namespace serving
}  // namespace tensorflow

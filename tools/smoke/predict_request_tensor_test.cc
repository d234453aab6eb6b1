// Proves the generated serving protos and TensorFlow's C++ tensors work together:
// a Tensor goes into a PredictRequest, through the wire format, and back.

#include <gtest/gtest.h>

#include "tensorflow/core/framework/tensor.h"
#include "tensorflow_serving/apis/predict.pb.h"

namespace tensorflow {
namespace serving {
namespace {

TEST(PredictRequestTensorTest, PackedTensorSurvivesSerialization) {
  Tensor x(DT_FLOAT, TensorShape({2, 3}));
  x.flat<float>().setValues({0.5f, 1.5f, -2.0f, 3.25f, 1e6f, -0.0f});

  PredictRequest request;
  request.mutable_model_spec()->set_name("half_plus_two");
  request.mutable_model_spec()->mutable_version()->set_value(123);
  x.AsProtoTensorContent(&(*request.mutable_inputs())["x"]);

  PredictRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(request.SerializeAsString()));
  EXPECT_EQ(parsed.model_spec().name(), "half_plus_two");
  EXPECT_EQ(parsed.model_spec().version().value(), 123);

  Tensor y;
  ASSERT_TRUE(y.FromProto(parsed.inputs().at("x")));
  EXPECT_EQ(y.DebugString(6), x.DebugString(6));
}

TEST(PredictRequestTensorTest, StringTensorUsesRepeatedField) {
  Tensor words(DT_STRING, TensorShape({2}));
  words.flat<tstring>()(0) = "remote";
  words.flat<tstring>()(1) = std::string("pre\0dict", 8);

  TensorProto proto;
  words.AsProtoField(&proto);
  ASSERT_EQ(proto.string_val_size(), 2);
  EXPECT_EQ(proto.string_val(1).size(), 8);

  Tensor back;
  ASSERT_TRUE(back.FromProto(proto));
  EXPECT_EQ(back.flat<tstring>()(0), "remote");
  EXPECT_EQ(back.flat<tstring>()(1), words.flat<tstring>()(1));
}

}  // namespace
}  // namespace serving
}  // namespace tensorflow

// Proves a graph built with the C++ ops API runs in a tensorflow::Session from
// the pip TensorFlow: the way the op's C++ tests run it.

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "tensorflow/cc/framework/scope.h"
#include "tensorflow/cc/ops/array_ops.h"
#include "tensorflow/cc/ops/const_op.h"
#include "tensorflow/cc/ops/math_ops.h"
#include "tensorflow/core/public/session.h"

namespace tensorflow {
namespace {

TEST(SessionRunTest, HalfPlusTwoGraphRuns) {
  Scope root = Scope::NewRootScope();
  auto x = ops::Placeholder(root.WithOpName("x"), DT_FLOAT);
  auto y = ops::AddV2(root.WithOpName("y"), ops::Mul(root, x, 0.5f), 2.0f);
  GraphDef graph;
  ASSERT_TRUE(root.ToGraphDef(&graph).ok());

  std::unique_ptr<Session> session(NewSession(SessionOptions()));
  ASSERT_NE(session, nullptr);
  ASSERT_TRUE(session->Create(graph).ok());

  Tensor x_value(DT_FLOAT, TensorShape({3}));
  x_value.vec<float>().setValues({1.0f, 2.0f, 5.0f});
  std::vector<Tensor> outputs;
  const absl::Status status =
      session->Run({{"x", x_value}}, {"y"}, {}, &outputs);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(outputs.size(), 1);
  const auto y_value = outputs[0].vec<float>();
  ASSERT_EQ(y_value.size(), 3);
  EXPECT_FLOAT_EQ(y_value(0), 2.5f);
  EXPECT_FLOAT_EQ(y_value(1), 3.0f);
  EXPECT_FLOAT_EQ(y_value(2), 4.5f);
}

}  // namespace
}  // namespace tensorflow

/**
 * ONNX → TensorFlow.js differentiable executor: the public surface.
 *
 *   const ex = await OnnxExecutor.create(model, { backend: 'auto', trainable: 'float' });
 *   const { logits } = ex.run({ input_ids, attention_mask, token_type_ids });          // inference
 *   const { value, grads } = tf.variableGrads(() => loss(ex.run(feeds, { hooks })), vars);  // gradients
 *   optimizer.minimize(() => loss(ex.run(feeds)), false, ex.trainableVariables());       // training
 *   const trained = withInitializers(model, ex.exportInitializers());                    // back to ONNX
 */
export { OnnxExecutor, type ExecutorHooks, type ExecutorOptions, type GraphIO, type RunOptions } from './executor.js';
export { initBackend, type BackendInfo, type BackendPreference } from './backend.js';
export { withInitializers } from './weights.js';
export { registeredOps } from './registry.js';
export { setSimdMatMulEnabled, simdMatMul, simdMatMulUnavailable } from './simd-matmul.js';

import { gradCAM, loadNetwork, readImage, writePng } from 'gradcam-webgpu/node';

// A manifest name, a file or a URL; 'googlenet-12' after `gradcam fetch googlenet-12`.
const net = await loadNetwork('googlenet-known-answer');
const image = await readImage('weights/samples/chelsea.png');

const result = await gradCAM(net, image, {
  classes: 'top3', // or 281, or [281, 285]
  featureLayers: ['inception_4e', 'inception_5b'], // or 'auto', 'all', any tensor name
  reduction: 'logit', // or 'softmax'
  overlay: true,
});
for (const m of result.maps) {
  console.log(`${m.layer} class ${m.class} (${m.label}): ${m.shape.join('×')} map, max ${m.max.toFixed(4)}`);
}
console.log(result.timings);
await writePng('cat-gradcam.png', result.maps[0].overlay!);
net.destroy();

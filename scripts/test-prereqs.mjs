#!/usr/bin/env node
// Runs before the tests (`npm test`): makes sure this machine can run WebGPU without a GPU.
//
// On Linux the tests need
//   - the Vulkan loader (libvulkan.so.1, Debian's `libvulkan1`), which Dawn (the `webgpu` package) opens;
//   - SwiftShader, a CPU Vulkan driver, and a Chromium with WebGPU for the page's end-to-end tests:
//     both come with Debian's `chromium` package (/usr/lib/chromium/vk_swiftshader_icd.json,
//     /usr/bin/chromium).
// When something is missing it is installed with apt-get, as root or through password-less sudo,
// with one line saying so. Otherwise one line says exactly what to run, and the tests do not start.
// Other systems are left alone (macOS and Windows have their own WebGPU drivers).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHROMIUM = process.env.GRADCAM_CHROMIUM ?? '/usr/bin/chromium';

function hasVulkanLoader() {
  try {
    return /libvulkan\.so\.1\b/.test(execFileSync('/sbin/ldconfig', ['-p'], { encoding: 'utf8' }));
  } catch {
    return ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib64', '/usr/lib'].some((d) => existsSync(`${d}/libvulkan.so.1`));
  }
}

function missing() {
  const need = [];
  if (!existsSync(ICD) || !existsSync(CHROMIUM)) need.push('chromium');
  if (!hasVulkanLoader()) need.push('libvulkan1');
  return need;
}

function ok(cmd, args) {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

function fail(line) {
  process.stderr.write(`npm test: ${line}\n`);
  process.exit(1);
}

if (process.platform === 'linux') {
  const need = missing();
  if (need.length) {
    const what = need.join(' ');
    const root = process.getuid?.() === 0;
    const apt = ok('sh', ['-c', 'command -v apt-get']);
    const sudo = !root && apt && ok('sudo', ['-n', 'true']);
    if (!apt) fail(`the tests need WebGPU on the CPU: install SwiftShader and Chromium (Debian: chromium), and the Vulkan loader (libvulkan1), then run npm test again`);
    if (!root && !sudo) fail(`the tests need WebGPU on the CPU: run \`sudo apt-get install -y --no-install-recommends ${what}\`, then npm test again`);
    const pre = root ? [] : ['sudo', '-n'];
    process.stderr.write(`npm test: installing ${what} with apt-get (SwiftShader, the CPU Vulkan driver, and a Chromium with WebGPU for the tests)…\n`);
    const run = (args) => {
      const [cmd, ...rest] = [...pre, ...args];
      const r = spawnSync(cmd, rest, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
      return r.status === 0;
    };
    if (!run(['apt-get', 'update', '-qq']) || !run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', ...need])) {
      fail(`apt-get could not install ${what}; install it yourself (\`sudo apt-get install -y ${what}\`), then run npm test again`);
    }
    const still = missing();
    if (still.length) {
      fail(`${still.join(' ')} installed, but ${existsSync(ICD) ? 'libvulkan.so.1' : ICD} is still missing (a snap Chromium does not ship SwiftShader): install Debian's chromium package, or set GRADCAM_CHROMIUM to a Chromium with WebGPU`);
    }
  }
}

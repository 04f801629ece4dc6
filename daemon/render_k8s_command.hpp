// `mqttd render-k8s --config PATH [--image NAME] [--namespace NS]`: prints the Kubernetes
// manifests that run the daemon on PATH (k8s/render.hpp).
#pragma once

namespace mqttd {

// argv[1] is "render-k8s". Returns the exit code: 0, 1 (invalid configuration, or one Kubernetes
// cannot carry), 2 (usage).
int render_k8s_command(int argc, char** argv);

}  // namespace mqttd

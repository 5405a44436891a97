"""``polysaga cluster``: a single-node Kubernetes on this machine, with real pods (etcd,
kube-apiserver, controller-manager, scheduler, kubelet, kube-proxy, containerd, CoreDNS and a
local image registry), on bridges of its own with no way out."""

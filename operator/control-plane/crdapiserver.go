// crdapiserver: the test control plane of the Kommerce operator.
//
// It runs the upstream k8s.io/apiextensions-apiserver — the part of kube-apiserver that serves
// CustomResourceDefinitions and custom resources (structural schemas, defaulting, CEL
// validation rules, server-side apply, the status subresource, finalizers, watches) — in front
// of etcd, standalone. It has no core API (/api/v1), no admission plugins and no delegated
// authentication: clients authenticate with a certificate signed by --client-ca-file, and the
// group system:masters may do everything. Root discovery and OpenAPI v2/v3 are switched on
// because kubectl needs them.
//
// scripts/control-plane.sh builds this file offline from Debian's Go source packages and starts
// it; see docs/operator.md ("Tests").
package main

import (
	"fmt"
	"net"
	"net/url"
	"os"

	"github.com/spf13/pflag"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	clientscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/cli/globalflag"
)

// conversionServices refuses every service lookup: CRD conversion webhooks need a cluster's
// Services, which this server does not have. Kommerce's CRDs use the None conversion strategy.
type conversionServices struct{}

func (conversionServices) ResolveEndpoint(namespace, name string, port int32) (*url.URL, error) {
	return nil, fmt.Errorf("no Services on this control plane (asked for %s/%s:%d)", namespace, name, port)
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "crdapiserver:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	ctx := genericapiserver.SetupSignalContext()

	opts := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	// Standalone: no kube-apiserver behind us to ask about namespaces, tokens or policies.
	opts.RecommendedOptions.CoreAPI = nil
	opts.RecommendedOptions.Admission = nil
	opts.RecommendedOptions.Features.EnablePriorityAndFairness = false
	opts.RecommendedOptions.Authentication.RemoteKubeConfigFileOptional = true
	opts.RecommendedOptions.Authentication.SkipInClusterLookup = true
	opts.RecommendedOptions.Authorization.RemoteKubeConfigFileOptional = true

	flags := pflag.NewFlagSet("crdapiserver", pflag.ContinueOnError)
	opts.AddFlags(flags)
	globalflag.AddGlobalFlags(flags, "crdapiserver")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if err := opts.Complete(); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	if err := opts.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, loopback); err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}

	generic := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	// The CRD handler wants core informers; give it empty ones that are always synced.
	generic.SharedInformerFactory = informers.NewSharedInformerFactory(fake.NewSimpleClientset(), 0)
	if err := opts.ServerRunOptions.ApplyTo(&generic.Config); err != nil {
		return err
	}
	if err := opts.RecommendedOptions.ApplyTo(generic); err != nil {
		return err
	}
	if err := opts.APIEnablement.ApplyTo(&generic.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
		return err
	}
	definitions := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme, clientscheme.Scheme)
	// Setting both also starts the controllers that publish each CRD's schema (kubectl explain,
	// client-side validation).
	generic.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(definitions, namer)
	generic.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(definitions, namer)

	config := &apiserver.Config{
		GenericConfig: generic,
		ExtraConfig: apiserver.ExtraConfig{
			CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*opts.RecommendedOptions.Etcd, generic.ResourceTransformers, generic.StorageObjectCountTracker),
			ServiceResolver:      conversionServices{},
			AuthResolverWrapper: webhook.NewDefaultAuthenticationInfoResolverWrapper(
				nil, nil, generic.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}
	completed := config.Complete()
	// Inside kube-apiserver the aggregator serves /apis; standalone we must do it ourselves.
	completed.GenericConfig.EnableDiscovery = true
	server, err := completed.New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return err
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

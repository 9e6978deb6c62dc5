export { type Cluster, type ClusterMember, type ClusterOptions, joinCluster } from './cluster.ts';

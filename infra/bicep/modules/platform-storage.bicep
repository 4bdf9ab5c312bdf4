// platform-storage.bicep: the environment default (AZCREDS_DEFAULT_STORAGE_ACCOUNT and
// AZCREDS_DEFAULT_CONTAINER), the platform's own storage for workspaces with no credential
// link and no org default. /creds hands out user delegation SAS for it, signed with a user
// delegation key the managed identity gets. A user delegation key needs an account-scope
// role that includes Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action:
// Storage Blob Data Contributor does, and it covers the SAS's read, write, delete and list.
// A user delegation SAS is an Entra ID authorization, so shared key access stays disabled.

@description('Storage account name: 3-24 lowercase letters and digits, globally unique.')
@minLength(3)
@maxLength(24)
param name string

param location string
param tags object

@description('Object (principal) id of the managed identity that signs the SAS.')
param principalId string

@description('The environment default\'s container.')
param containerName string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}

// Account scope, not container scope: Get User Delegation Key is an account operation.
resource blobDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, principalId, storageBlobDataContributor)
  scope: account
  properties: {
    description: 'Storage Blob Data Contributor for the azcreds managed identity (environment default SAS)'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = account.name
output id string = account.id
output containerName string = container.name
